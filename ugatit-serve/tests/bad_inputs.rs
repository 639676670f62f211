//! Everything a client can get wrong gets its status and a message naming the problem, and the
//! server keeps serving: bad links, wrong tokens, bad uploads, bad crops, the rate limit.

mod common;

use std::time::Duration;

use common::{client, get_json, get_text, picture, png, upload, wait_finished, Server};
use ugatit_serve::links::Signer;

/// What is uploaded (a name, the file, the text fields), and the status and error it gets.
type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);

/// A PNG whose header claims 100000 x 100000 pixels: ten gigapixels from a few bytes.
fn decompression_bomb() -> Vec<u8> {
    let mut bytes = png(&image::RgbImage::new(1, 1));
    // Signature (8), IHDR length (4) and type (4), then width and height, then the CRC of
    // type + data at 29..33.
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_links_and_tokens_are_refused_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-upload", "200KB"]);
    let c = client();
    let photo = png(&picture());

    let cases: Vec<Case> = vec![
        ("zero bytes", vec![], vec![], 422, "image: empty file"),
        (
            "not an image",
            b"hello, world".to_vec(),
            vec![],
            422,
            "image: not a readable image (not a PNG, JPEG, WebP, BMP or TIFF image)",
        ),
        (
            "truncated",
            photo[..photo.len() / 2].to_vec(),
            vec![],
            422,
            "image: not a readable image",
        ),
        (
            "bomb",
            decompression_bomb(),
            vec![],
            422,
            "image: 100000x100000 is 10000000000 pixels, more than --max-pixels 50000000",
        ),
        (
            "oversized",
            vec![7; 300_000],
            vec![],
            413,
            "the upload is over --max-upload 200000 bytes",
        ),
        (
            "crop outside",
            photo.clone(),
            vec![("crop", r#"{"x":150,"y":0,"w":100,"h":100}"#)],
            422,
            "crop 150,0,100,100 is outside the 200x150 image",
        ),
        (
            "crop empty",
            photo.clone(),
            vec![("crop", r#"{"x":0,"y":0,"w":0,"h":10}"#)],
            422,
            "crop 0,0,0,10 is empty",
        ),
        (
            "crop syntax",
            photo.clone(),
            vec![("crop", "1,2,3,4")],
            400,
            "crop must be",
        ),
        (
            "direction",
            photo.clone(),
            vec![("direction", "b2a")],
            400,
            "this server translates a2b, not b2a",
        ),
        (
            "email",
            photo.clone(),
            vec![("email", "not an address")],
            400,
            "email \"not an address\" is not an address",
        ),
        (
            "unknown field",
            photo.clone(),
            vec![("colour", "red")],
            400,
            "unknown field \"colour\"",
        ),
    ];
    for (what, file, fields, status, message) in cases {
        let (code, body, _) = upload(&c, &server, file, &fields).await;
        assert_eq!(code, status, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(message),
            "{what}: {error:?} should start with {message:?}"
        );
    }
    let not_multipart = c
        .post(server.url("/api/v1/jobs"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 400);
    let no_image = reqwest::multipart::Form::new().text("crop", "auto");
    let response = c
        .post(server.url("/api/v1/jobs"))
        .multipart(no_image)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // A good upload still works, and its link only as signed.
    let (code, body, _) = upload(&c, &server, photo.clone(), &[]).await;
    assert_eq!(code, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let done = wait_finished(&c, &server, &id, Duration::from_secs(60)).await;
    let link = done["result_url"].as_str().unwrap().to_string();
    assert_eq!(c.get(server.url(&link)).send().await.unwrap().status(), 200);

    let exp: u64 = link
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sig = link.split("sig=").nth(1).unwrap();
    let signer = Signer::load_or_create(&dir.path().join("secret")).unwrap();
    let expired_exp = 1_000_000;
    let refused = [
        (
            format!("/r/{id}.png?exp={}&sig={sig}", exp + 1),
            "this link is not valid (forged or altered)",
        ),
        (
            format!("/r/{id}.png?exp={exp}&sig={}", "ab".repeat(32)),
            "this link is not valid (forged or altered)",
        ),
        (
            format!("/r/{id}.png?exp={exp}"),
            "this link is not valid (forged or altered)",
        ),
        (
            format!("/r/{}.png?exp={exp}&sig={sig}", "f".repeat(32)),
            "this link is not valid (forged or altered)",
        ),
        (
            format!(
                "/r/{id}.png?exp={expired_exp}&sig={}",
                signer.sign(&id.parse().unwrap(), expired_exp)
            ),
            "this link expired",
        ),
    ];
    for (url, message) in refused {
        let (code, body) = get_json(&c, &server.url(&url)).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (403, Some(message)),
            "{url}"
        );
    }

    let delete = |token: Option<&str>| {
        let request = c.delete(server.url(&format!("/api/v1/jobs/{id}")));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
        .send()
    };
    assert_eq!(delete(None).await.unwrap().status(), 403);
    assert_eq!(delete(Some("wrong")).await.unwrap().status(), 403);
    let (code, _) = get_json(&c, &server.url("/api/v1/jobs/not-an-id")).await;
    assert_eq!(code, 404);

    let (code, health) = get_json(&c, &server.url("/healthz")).await;
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
    let metrics = get_text(&c, &server.url("/metrics")).await;
    for line in [
        "ugatit_jobs_rejected_total{reason=\"bad_image\"} 6",
        "ugatit_jobs_rejected_total{reason=\"too_large\"} 1",
        "ugatit_jobs_rejected_total{reason=\"bad_request\"} 6",
        "ugatit_jobs_accepted_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_101st_upload_in_an_hour_from_one_address_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--rate-limit", "100"]);
    let c = client();
    let tiny = png(&image::RgbImage::new(8, 8));
    for i in 0..100 {
        let (code, body, _) = upload(&c, &server, tiny.clone(), &[]).await;
        assert_eq!(code, 202, "upload {i}: {body}");
    }
    let (code, body, headers) = upload(&c, &server, tiny, &[]).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(
        body["error"],
        "more than 100 uploads in an hour from 127.0.0.1"
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 3500 && wait <= 3600, "{wait}");
    assert_eq!(get_json(&c, &server.url("/healthz")).await.0, 200);
}
