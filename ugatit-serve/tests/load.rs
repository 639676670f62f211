//! Load on loopback, bounded in count and time: 1000 concurrent uploads against a queue of 200
//! with the rate limit off. Every 202 completes, the rest get 503 with Retry-After, nothing
//! else; the server's memory stays bounded. Prints the figures docs/PERFORMANCE.md records.

mod common;

use std::time::{Duration, Instant};

use common::{client, get_json, get_text, picture, png, upload, Server};

const UPLOADS: usize = 1000;
const QUEUE: &str = "200";
/// Far above what 1000 small uploads need (the upload permits bound it), far below unbounded.
const MAX_RSS: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_uploads_against_a_queue_of_200() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(
        dir.path(),
        &["--queue-size", QUEUE, "--rate-limit", "0"],
    ));
    let c = client();
    let photo = png(&picture());
    let started = Instant::now();
    let tasks: Vec<_> = (0..UPLOADS)
        .map(|_| {
            let (c, server, photo) = (c.clone(), server.clone(), photo.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let (code, body, headers) = upload(&c, &server, photo, &[]).await;
                (code, body, headers.contains_key("retry-after"), t.elapsed())
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut latencies = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (code, body, retry_after, latency) = task.await.unwrap();
        match code {
            202 => {
                accepted.push(body["id"].as_str().unwrap().to_string());
                latencies.push(latency);
            }
            503 => {
                assert!(retry_after, "503 without Retry-After: {body}");
                assert_eq!(
                    body["error"],
                    "the queue is full (200 jobs waiting); try again later"
                );
                refused += 1;
            }
            other => panic!("status {other}: {body}"),
        }
    }
    let uploads_done = started.elapsed();
    assert_eq!(accepted.len() + refused, UPLOADS);
    assert!(accepted.len() >= 200, "{} accepted", accepted.len());

    let deadline = Instant::now() + Duration::from_secs(300);
    for id in &accepted {
        loop {
            let (code, body) = get_json(&c, &server.url(&format!("/api/v1/jobs/{id}"))).await;
            assert_eq!(code, 200);
            if body["status"] == "done" {
                break;
            }
            assert_ne!(body["status"], "failed", "{body}");
            assert!(Instant::now() < deadline, "job {id} not done: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let all_done = started.elapsed();
    let rss = server.peak_rss().unwrap_or(0);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "load: {} accepted, {refused} refused (503); uploads answered in {:.2} s; \
         accepted latency p50 {:.1} ms, p99 {:.1} ms; {} jobs done in {:.2} s = {:.1} jobs/s; \
         server peak RSS {:.0} MiB",
        accepted.len(),
        uploads_done.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        accepted.len(),
        all_done.as_secs_f64(),
        accepted.len() as f64 / all_done.as_secs_f64(),
        rss as f64 / f64::from(1 << 20),
    );
    assert!(rss < MAX_RSS, "peak RSS {rss} bytes");
    let metrics = get_text(&c, &server.url("/metrics")).await;
    assert!(metrics.contains(&format!("ugatit_jobs_done_total {}\n", accepted.len())));
    assert!(metrics.contains(&format!(
        "ugatit_jobs_rejected_total{{reason=\"queue_full\"}} {refused}\n"
    )));
}
