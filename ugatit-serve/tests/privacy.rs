//! The flags of the privacy and proxy rules: uploads kept only with `--keep-inputs`, records and
//! files purged once their links expire, and client addresses read from `X-Forwarded-For` only
//! behind `--trust-proxy`.

mod common;

use std::time::Duration;

use common::{client, get_json, picture, png, upload, wait_finished, Server};

/// The files of `dir` (a blob folder: `inputs/`, `results/`).
fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_kept_only_when_asked_and_everything_goes_when_links_expire() {
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let mut server = Server::start(dir.path(), &["--keep-inputs", "--link-ttl", "3s"]);
    let (code, job, _) = upload(&c, &server, png(&picture()), &[]).await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let done = wait_finished(&c, &server, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        files(&blobs.join("inputs")),
        1,
        "--keep-inputs keeps the upload"
    );
    assert_eq!(files(&blobs.join("results")), 1);
    assert!(server.terminate().success());

    // Past the links' expiry, the next start purges the record, the upload and the result.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = Server::start(dir.path(), &[]);
    // The purge deletes the record first, then the files.
    let begun = std::time::Instant::now();
    loop {
        let (code, _) = get_json(&c, &again.url(&format!("/api/v1/jobs/{id}"))).await;
        let left = files(&blobs.join("inputs")) + files(&blobs.join("results"));
        if code == 404 && left == 0 {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "not purged: status {code}, {left} files left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts an upload claiming to come from `forwarded_for`; the status code.
async fn upload_from(c: &reqwest::Client, server: &Server, forwarded_for: &str) -> u16 {
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(png(&picture())).file_name("me.png"),
    );
    c.post(server.url("/api/v1/jobs"))
        .header("X-Forwarded-For", forwarded_for)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_trust_proxy() {
    let c = client();
    let dir = tempfile::tempdir().unwrap();
    let proxied = Server::start(dir.path(), &["--rate-limit", "1", "--trust-proxy"]);
    // The last entry is the one our proxy appended: the client's address as the proxy saw it.
    // Earlier entries are whatever the client sent, so forging them changes nothing.
    assert_eq!(
        upload_from(&c, &proxied, "198.51.100.7, 203.0.113.1").await,
        202
    );
    assert_eq!(
        upload_from(&c, &proxied, "198.51.100.7, 203.0.113.2").await,
        202
    );
    assert_eq!(
        upload_from(&c, &proxied, "192.0.2.99, 203.0.113.1").await,
        429
    );

    let other = tempfile::tempdir().unwrap();
    let direct = Server::start(other.path(), &["--rate-limit", "1"]);
    assert_eq!(upload_from(&c, &direct, "203.0.113.1").await, 202);
    // Without --trust-proxy the header is anyone's to write: the connection's address counts.
    assert_eq!(upload_from(&c, &direct, "203.0.113.2").await, 429);
}
