//! The upload page in a real browser: headless Chromium (Debian's `chromium`, driven through
//! its `chromedriver` by fantoccini) against the real `ugatit-serve` binary serving the small
//! official-format light model of the store's fixtures. A desktop window picks a photo whose
//! EXIF orientation turns it, moves the crop square with the mouse, shrinks it by touch,
//! uploads, sees the result and deletes the job; a phone-sized one sees the API's error for a
//! file that is no image, then uploads the photo. Screenshots are left in
//! `target/test-artifacts/` (`serve-page.png`, `serve-page-phone.png`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::actions::{
    InputSource, MouseActions, PointerAction, TouchActions, MOUSE_BUTTON_LEFT,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `ugatit-serve` on a port of its choosing, keeping its data under `dir`. Its log is read
/// on a thread (so that it never blocks on a full pipe) until it says where it listens.
fn serve(dir: &Path) -> (Running, String) {
    let model = fixture("ugatit-store/tests/fixtures/light_128_ch8_r3/official.pt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ugatit-serve"))
        .arg("--model")
        .arg(model)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(Ok(url.to_string()));
            }
            log.push_str(&line);
            log.push('\n');
        }
        let _ = tx.send(Err(log));
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(url)) => (server, url),
        Ok(Err(log)) => panic!("ugatit-serve exited before listening:\n{log}"),
        Err(e) => panic!("ugatit-serve did not listen: {e}"),
    }
}

/// chromedriver on a port of its choosing, which it names once ready.
fn chromedriver() -> (Running, String) {
    let child = Command::new("chromedriver")
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (apt-get install chromium chromium-driver; scripts/test.sh does)");
    let mut driver = Running(child);
    let stdout = driver.0.stdout.take().unwrap();
    // Read on past the line it names its port in, so it never writes to a closed pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').to_string());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("chromedriver did not start");
    (driver, format!("http://127.0.0.1:{port}"))
}

/// A fresh headless Chromium. The background-networking flags keep it from dialling out,
/// which on a closed network makes it refuse connections.
async fn browser(driver: &str, profile: &Path, phone: bool) -> Client {
    let mut options = json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1100",
            format!("--user-data-dir={}", profile.display()),
        ],
    });
    if phone {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true},
        });
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver)
        .await
        .unwrap()
}

/// The photo as a phone stores it: pixels saved turned a quarter left, with EXIF orientation 6
/// saying to turn them right. Upright it is 240x160, a crop of the inference fixture's faces.
fn turned_photo(dir: &Path) -> PathBuf {
    let upright = image::open(fixture("ugatit-infer/tests/fixtures/face.jpg"))
        .unwrap()
        .crop_imm(0, 40, 240, 160);
    let stored = upright.rotate270();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&stored)
        .unwrap();
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112),
    // SHORT, count 1, value 6; placed right after the start-of-image marker.
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00\x01\x00".to_vec();
    tiff.extend_from_slice(b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00");
    tiff.extend_from_slice(&[0; 4]);
    let length = (2 + 6 + tiff.len()) as u16;
    let mut app1 = vec![0xff, 0xe1];
    app1.extend_from_slice(&length.to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    jpeg.splice(2..2, app1);
    let path = dir.join("turned.jpg");
    std::fs::write(&path, jpeg).unwrap();
    path
}

/// The photo's size as the page measures it, and the crop square's on-screen box converted to
/// the photo's pixels (the page's own number for what it will send is not trusted here).
const GEOMETRY: &str = r#"
    const photo = document.getElementById('photo').getBoundingClientRect();
    const box = document.getElementById('crop-box').getBoundingClientRect();
    const natural = document.getElementById('photo');
    const k = natural.naturalWidth / photo.width;
    return {
        natural: [natural.naturalWidth, natural.naturalHeight],
        scale: 1 / k,
        x: (box.left - photo.left) * k,
        y: (box.top - photo.top) * k,
        w: box.width * k,
        h: box.height * k,
    };
"#;

/// Wraps `fetch` to keep what the page sends and the job the API accepts.
const RECORD_UPLOADS: &str = r#"
    window.sent = [];
    window.accepted = [];
    const send = window.fetch;
    window.fetch = (url, init) => {
        const upload = init && init.body instanceof FormData;
        if (upload) window.sent.push(init.body.get('crop'));
        return send(url, init).then((res) => {
            if (upload && res.status === 202) res.clone().json().then((j) => window.accepted.push(j));
            return res;
        });
    };
"#;

async fn geometry(client: &Client) -> Value {
    client.execute(GEOMETRY, vec![]).await.unwrap()
}

async fn pick(client: &Client, file: &Path) {
    let input = client.find(Locator::Id("image")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
}

/// Drags from an element's centre by `(dx, dy)` CSS pixels with a mouse or a finger.
async fn drag(client: &Client, css: &str, dx: f64, dy: f64, touch: bool) {
    let element = client.find(Locator::Css(css)).await.unwrap();
    let steps = [
        PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        },
        PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        },
        PointerAction::MoveBy {
            duration: Some(Duration::from_millis(250)),
            x: dx,
            y: dy,
        },
        PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        },
    ];
    if touch {
        let actions = steps
            .into_iter()
            .fold(TouchActions::new("finger".into()), InputSource::then);
        client.perform_actions(actions).await.unwrap();
    } else {
        let actions = steps
            .into_iter()
            .fold(MouseActions::new("mouse".into()), InputSource::then);
        client.perform_actions(actions).await.unwrap();
    }
}

async fn visible(client: &Client, css: &str, within: Duration) {
    client
        .wait()
        .at_most(within)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"));
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn click(client: &Client, id: &str) {
    let element = client.find(Locator::Id(id)).await.unwrap();
    element.click().await.unwrap();
}

async fn text(client: &Client, id: &str) -> String {
    let element = client.find(Locator::Id(id)).await.unwrap();
    element.text().await.unwrap()
}

/// The crop field of the last upload, as the page sent it.
async fn sent_crop(client: &Client) -> Value {
    let sent = js(client, "return window.sent.at(-1)").await;
    serde_json::from_str(sent.as_str().unwrap()).unwrap()
}

/// Uploads what the form holds and waits for the result image.
async fn upload(client: &Client) {
    js(client, RECORD_UPLOADS).await;
    click(client, "submit").await;
    let done = "#result:not([hidden]), #error:not([hidden])";
    visible(client, done, Duration::from_secs(120)).await;
    assert_eq!(text(client, "error").await, "", "the page shows an error");
    let size = js(
        client,
        "const r = document.getElementById('result-image'); \
         return r.complete ? [r.naturalWidth, r.naturalHeight] : null",
    )
    .await;
    let width = size[0].as_u64().unwrap_or(0);
    assert!(width > 0, "the result image loaded: {size}");
    assert_eq!(size[0], size[1], "a square result");
}

fn artifact(name: &str, png: &[u8]) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Whether two lengths in photo pixels agree up to the rounding of whole pixels.
fn close(a: &Value, b: &Value, key: &str) -> bool {
    let (a, b) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
    (a - b).abs() <= 1.0
}

/// `value` with `key` moved by `by` CSS pixels, in photo pixels.
fn shifted(value: &Value, key: &str, by: f64) -> Value {
    let mut out = value.clone();
    out[key] = json!(value[key].as_f64().unwrap() + by / value["scale"].as_f64().unwrap());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_crops_uploads_shows_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let photo = turned_photo(dir.path());
    let (_server, base) = serve(dir.path());
    let (_driver, driver) = chromedriver();

    let desktop = browser(&driver, &dir.path().join("desktop"), false).await;
    on_a_desktop(&desktop, &base, &photo).await;
    desktop.close().await.unwrap();

    let phone = browser(&driver, &dir.path().join("phone"), true).await;
    on_a_phone(&phone, &base, &photo, dir.path()).await;
    phone.close().await.unwrap();
}

/// Moves the square with the mouse and shrinks it by touch, uploads, checks that the crop
/// sent is the square on screen, then deletes the job.
async fn on_a_desktop(client: &Client, base: &str, photo: &Path) {
    client.goto(base).await.unwrap();
    pick(client, photo).await;
    visible(
        client,
        "#crop-section:not([hidden])",
        Duration::from_secs(10),
    )
    .await;
    let start = geometry(client).await;
    assert_eq!(
        start["natural"],
        json!([240, 160]),
        "EXIF orientation applied"
    );

    drag(client, "#crop-box", -60.0, 30.0, false).await;
    let moved = geometry(client).await;
    let expected = shifted(&shifted(&start, "x", -60.0), "y", 30.0);
    assert!(
        close(&moved, &expected, "x") && close(&moved, &expected, "y"),
        "{moved}"
    );
    drag(client, ".handle.se", -40.0, -40.0, true).await;
    let shrunk = geometry(client).await;
    let expected = shifted(&moved, "w", -40.0);
    assert!(
        close(&shrunk, &expected, "w") && close(&shrunk, &moved, "x"),
        "{shrunk}"
    );

    upload(client).await;
    let sent = sent_crop(client).await;
    for key in ["x", "y", "w", "h"] {
        assert!(close(&sent, &shrunk, key), "sent {sent}, square {shrunk}");
    }
    assert_eq!(sent["w"], sent["h"], "a square");
    js(client, "window.scrollTo(0, 0)").await;
    artifact("serve-page.png", &client.screenshot().await.unwrap());

    let accepted = js(client, "return window.accepted[0]").await;
    click(client, "delete").await;
    visible(client, "#job[hidden]", Duration::from_secs(30)).await;
    let status = text(client, "status").await;
    assert!(status.starts_with("Deleted"), "{status}");
    let job = format!("{base}{}", accepted["status_url"].as_str().unwrap());
    assert_eq!(reqwest::get(&job).await.unwrap().status(), 404);
}

/// A file that is no image gets the API's own message; then the photo, its square dragged by
/// touch, fits the screen and is translated.
async fn on_a_phone(client: &Client, base: &str, photo: &Path, dir: &Path) {
    client.goto(base).await.unwrap();
    let notes = dir.join("notes.jpg");
    std::fs::write(&notes, "not a picture").unwrap();
    pick(client, &notes).await;
    visible(client, "#no-preview:not([hidden])", Duration::from_secs(10)).await;
    click(client, "submit").await;
    visible(client, "#error:not([hidden])", Duration::from_secs(30)).await;
    let error = text(client, "error").await;
    assert!(
        error.starts_with("The service cannot use this photo"),
        "{error}"
    );
    assert!(error.contains('('), "the API's reason is shown: {error}");

    pick(client, photo).await;
    visible(
        client,
        "#crop-section:not([hidden])",
        Duration::from_secs(10),
    )
    .await;
    let overflow = js(
        client,
        "return document.documentElement.scrollWidth - innerWidth",
    )
    .await;
    assert!(overflow.as_f64().unwrap() <= 0.0, "wider than the phone");
    drag(client, "#crop-box", -30.0, 20.0, true).await;
    let placed = geometry(client).await;
    upload(client).await;
    let sent = sent_crop(client).await;
    for key in ["x", "y", "w", "h"] {
        assert!(close(&sent, &placed, key), "sent {sent}, square {placed}");
    }
    js(client, "document.getElementById('job').scrollIntoView()").await;
    artifact("serve-page-phone.png", &client.screenshot().await.unwrap());
}
