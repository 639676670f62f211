//! The whole flow over real HTTP: upload with a crop box or `"auto"`, poll, fetch the signed
//! result (the same pixels as the inference crate's `translate` with that crop), delete, 404.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{
    client, get_json, get_text, max_diff, picture, png, upload, wait_finished, Server, SIZE,
};
use ugatit_infer::{Crop, Options, Region, Translator};
use ugatit_model::{Cpu, Direction};

fn translator() -> Translator<Cpu> {
    Translator::load(
        &common::model(),
        Direction::A2B,
        Some(SIZE),
        &Default::default(),
    )
    .unwrap()
}

/// scikit-image's `astronaut` (public domain), from the installed package.
fn astronaut() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), 'data', 'astronaut.png'))"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "scikit-image is needed (pip install scikit-image): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

async fn fetch_png(client: &reqwest::Client, url: &str) -> image::RgbImage {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = response.bytes().await.unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cropped_upload_is_translated_fetched_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "https://selfie2anime.example";
    let server = Server::start(dir.path(), &["--cors-origin", origin]);
    let c = client();
    let photo = picture();
    let (code, body, _) = upload(
        &c,
        &server,
        png(&photo),
        &[
            ("crop", r#"{"x":30,"y":10,"w":120,"h":100}"#),
            ("direction", "a2b"),
        ],
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["status_url"], format!("/api/v1/jobs/{id}"));
    let token = body["delete_token"].as_str().unwrap().to_string();

    let done = wait_finished(&c, &server, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "done", "{done}");
    let link = done["result_url"].as_str().unwrap();
    assert!(link.starts_with(&format!("/r/{id}.png?exp=")), "{link}");
    let served = fetch_png(&c, &server.url(link)).await;

    let region = Region {
        x: 30,
        y: 10,
        width: 120,
        height: 100,
    };
    let options = Options {
        crop: Crop::Box(region),
        ..Default::default()
    };
    let expected = translator().translate(&photo, &options).unwrap().image;
    assert!(
        max_diff(&served, &expected) <= 1,
        "differs by {}",
        max_diff(&served, &expected)
    );
    // The upload is gone once the result is stored; the name the client sent is used nowhere.
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/inputs"))
            .unwrap()
            .count(),
        0
    );

    let wrong = c
        .delete(server.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "wrong delete token");
    let deleted = c
        .delete(server.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (code, body) = get_json(&c, &server.url(&format!("/api/v1/jobs/{id}"))).await;
    assert_eq!(code, 404);
    assert_eq!(body["error"], format!("no job {id}"));
    assert_eq!(c.get(server.url(link)).send().await.unwrap().status(), 404);
    assert!(!dir.path().join(format!("blobs/results/{id}.png")).exists());

    // The email's delete link works the same way.
    let (_, body, _) = upload(&c, &server, png(&photo), &[]).await;
    let id = body["id"].as_str().unwrap();
    let token = body["delete_token"].as_str().unwrap();
    let (code, _) = get_json(&c, &server.url(&format!("/d/{id}?token=nope"))).await;
    assert_eq!(code, 403);
    let (code, body) = get_json(&c, &server.url(&format!("/d/{id}?token={token}"))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        get_json(&c, &server.url(&format!("/api/v1/jobs/{id}")))
            .await
            .0,
        404
    );

    let (code, health) = get_json(&c, &server.url("/healthz")).await;
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
    let preflight = c
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/jobs"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let metrics = get_text(&c, &server.url("/metrics")).await;
    assert!(
        metrics.contains("ugatit_jobs_accepted_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ugatit_inference_seconds_count"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_crops_around_the_astronauts_face_as_translate_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let c = client();
    let path = astronaut();
    let bytes = std::fs::read(&path).unwrap();
    let (code, body, _) = upload(&c, &server, bytes, &[("crop", "auto")]).await;
    assert_eq!(code, 202, "{body}");
    let id = body["id"].as_str().unwrap();
    let done = wait_finished(&c, &server, id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "done", "{done}");
    let served = fetch_png(&c, &server.url(done["result_url"].as_str().unwrap())).await;

    let photo = ugatit_io::read_rgb(&path, u64::MAX).unwrap();
    let t = translator();
    let auto = Options {
        crop: Crop::Auto {
            fallback_center: false,
        },
        ..Default::default()
    };
    let expected = t.translate(&photo, &auto).unwrap();
    // The face is in the upper middle of the 512x512 picture, not the centre square.
    let r = expected.region;
    assert!(r.width < 400 && r.x > 100 && r.y < 150, "{r:?}");
    assert!(max_diff(&served, &expected.image) <= 1);
    let centre = Options {
        crop: Crop::Center,
        ..Default::default()
    };
    assert!(max_diff(&served, &t.translate(&photo, &centre).unwrap().image) > 1);
}
