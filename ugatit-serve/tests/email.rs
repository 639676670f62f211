//! Result emails against a real SMTP server (an `aiosmtpd` sink on a loopback port writing
//! each message into a Maildir): a job uploaded with an address gets one message whose result
//! link downloads the image and whose delete link deletes the job; a job without an address
//! gets none.

mod services;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use services::{Running, SmtpSink};

const FROM: &str = "Selfie2Anime <noreply@example.com>";
const TO: &str = "user@example.com";

/// `ugatit-serve` with the small model and mail through `smtp`, on a port chosen here so that
/// `--public-url` can name it.
fn serve(dir: &Path, smtp: &str) -> (Running, String) {
    let base = format!("http://127.0.0.1:{}", services::free_port());
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-store/tests/fixtures/light_128_ch8_r3/official.pt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ugatit-serve"))
        .arg("--model")
        .arg(model)
        .args(["--size", "128", "--device", "cpu", "--rate-limit", "0"])
        .args(["--listen", base.trim_start_matches("http://")])
        .args(["--public-url", &base, "--smtp", smtp, "--mail-from", FROM])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ugatit-serve");
    let stderr = child.stderr.take().unwrap();
    let server = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("listening on ") {
                let _ = tx.send(Ok(()));
            }
            log.push_str(&line);
            log.push('\n');
        }
        let _ = tx.send(Err(log));
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(())) => (server, base),
        Ok(Err(log)) => panic!("ugatit-serve exited before listening:\n{log}"),
        Err(e) => panic!("ugatit-serve did not listen: {e}"),
    }
}

fn photo() -> Vec<u8> {
    let image = image::RgbImage::from_fn(160, 120, |x, y| {
        image::Rgb([(x * 3 % 256) as u8, (y * 2 % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn upload(http: &reqwest::Client, base: &str, email: Option<&str>) -> String {
    let mut form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(photo()).file_name("me.png"),
        )
        .text("crop", r#"{"x":20,"y":10,"w":100,"h":100}"#);
    if let Some(email) = email {
        form = form.text("email", email.to_string());
    }
    let response = http
        .post(format!("{base}/api/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn wait_done(http: &reqwest::Client, base: &str, id: &str) {
    let start = Instant::now();
    loop {
        let status: Value = http
            .get(format!("{base}/api/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match status["status"].as_str() {
            Some("done") => return,
            Some("queued" | "running") => {}
            _ => panic!("job {id}: {status}"),
        }
        assert!(start.elapsed() < Duration::from_secs(120), "job {id} hangs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The body of a raw message, with quoted-printable decoded (lettre encodes bodies whose
/// lines are longer than 76 characters, as links are, that way).
fn body(message: &str) -> String {
    let (head, body) = message.split_once("\n\n").unwrap_or_default();
    let body = body.replace("\r\n", "\n");
    if !head.to_ascii_lowercase().contains("quoted-printable") {
        return body;
    }
    let joined = body.replace("=\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_finished_job_emails_a_working_result_link_and_delete_link() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("mail"));
    let (_server, base) = serve(&dir.path().join("data"), &sink.url());
    let http = reqwest::Client::new();

    let silent = upload(&http, &base, None).await;
    let id = upload(&http, &base, Some(TO)).await;
    wait_done(&http, &base, &silent).await;
    wait_done(&http, &base, &id).await;
    let start = Instant::now();
    let message = loop {
        if let Some(m) = sink.messages().pop() {
            break m.replace("\r\n", "\n");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no message came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        sink.messages().len(),
        1,
        "one message, for the job with an address"
    );
    assert!(message.contains(&format!("To: {TO}")), "{message}");
    assert!(message.contains("noreply@example.com"), "{message}");

    let text = body(&message);
    let links: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with("http://"))
        .collect();
    let [result, delete] = links[..] else {
        panic!("expected a result link and a delete link: {text}");
    };
    assert!(
        result.starts_with(&format!("{base}/r/{id}.png?exp=")),
        "{result}"
    );
    assert!(
        delete.starts_with(&format!("{base}/d/{id}?token=")),
        "{delete}"
    );

    let got = http.get(result).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    let image = image::load_from_memory(&got.bytes().await.unwrap()).unwrap();
    assert_eq!((image.width(), image.height()), (128, 128));

    let deleted = http.get(delete).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let gone = http
        .get(format!("{base}/api/v1/jobs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let after = http.get(result).send().await.unwrap().status().as_u16();
    assert!(after == 403 || after == 404, "{after}");
}
