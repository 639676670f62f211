//! No accepted job is lost or done twice: kill -9 with jobs queued and one running, restart,
//! and every job completes exactly once; SIGTERM finishes the batch in progress, leaves the
//! queue stored and exits 0.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{client, get_json, picture, png, upload, wait_finished, Server};
use ugatit_serve::jobs::sqlite::SqliteJobs;
use ugatit_serve::jobs::{JobId, JobState, JobStore};

/// Queues `n` jobs with an API-only process (no model), which then stops.
async fn queue_jobs(dir: &std::path::Path, n: usize) -> Vec<String> {
    let mut api = Server::start(dir, &["--role", "api", "--rate-limit", "0"]);
    let c = client();
    let photo = png(&image::imageops::resize(
        &picture(),
        800,
        600,
        image::imageops::FilterType::Triangle,
    ));
    let mut ids = Vec::new();
    for _ in 0..n {
        let (code, body, _) = upload(&c, &api, photo.clone(), &[("crop", "auto")]).await;
        assert_eq!(code, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    assert!(api.terminate().success());
    ids
}

/// How many times each job was logged as done.
fn done_counts(logs: &[Vec<String>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in logs.iter().flatten() {
        if let Some(id) = line
            .strip_prefix("job ")
            .and_then(|l| l.strip_suffix(" done"))
        {
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_job_then_restart_completes_every_job_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ids = queue_jobs(dir.path(), 24).await;
    let c = client();

    let mut first = Server::start(dir.path(), &["--lease", "2s"]);
    let start = Instant::now();
    'watch: loop {
        for id in &ids {
            let (_, body) = get_json(&c, &first.url(&format!("/api/v1/jobs/{id}"))).await;
            if body["status"] == "running" {
                break 'watch;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no job was seen running"
        );
    }
    first.kill9();

    // At the moment of the crash one job was leased and others still queued.
    let store = SqliteJobs::open(&dir.path().join("jobs.sqlite")).unwrap();
    let mut states = HashMap::new();
    for id in &ids {
        let job = store
            .get(&id.parse::<JobId>().unwrap())
            .await
            .unwrap()
            .unwrap();
        *states.entry(job.state.name()).or_insert(0) += 1;
        assert!(!matches!(job.state, JobState::Failed(_)));
    }
    assert!(states.get("queued").copied().unwrap_or(0) > 0, "{states:?}");
    assert!(
        states.get("running").copied().unwrap_or(0) > 0,
        "{states:?}"
    );

    let mut second = Server::start(dir.path(), &["--lease", "2s"]);
    for id in &ids {
        let done = wait_finished(&c, &second, id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "done", "{done}");
        let link = second.url(done["result_url"].as_str().unwrap());
        assert_eq!(c.get(link).send().await.unwrap().status(), 200);
    }
    // The API can report a job done before the worker has logged it: stop the server, so its
    // log is complete, before counting.
    assert!(second.terminate().success());
    let counts = done_counts(&[first.log(), second.log()]);
    for id in &ids {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "job {id} done {:?} times",
            counts.get(id)
        );
    }
    assert_eq!(counts.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_in_progress_and_leaves_the_queue_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ids = queue_jobs(dir.path(), 12).await;
    let c = client();

    let mut server = Server::start(dir.path(), &[]);
    let start = Instant::now();
    loop {
        let (_, body) = get_json(&c, &server.url(&format!("/api/v1/jobs/{}", ids[0]))).await;
        if body["status"] != "queued" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60));
    }
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let log = server.log();
    assert!(log.iter().any(|l| l.starts_with("stopping:")), "{log:?}");

    // Nothing is left leased: every job is done or waiting for the next start.
    let store = SqliteJobs::open(&dir.path().join("jobs.sqlite")).unwrap();
    for id in &ids {
        let job = store
            .get(&id.parse::<JobId>().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(job.state, JobState::Done | JobState::Queued),
            "{id}: {:?}",
            job.state
        );
    }
    let mut again = Server::start(dir.path(), &[]);
    for id in &ids {
        let done = wait_finished(&c, &again, id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "done", "{done}");
    }
    // The API can report a job done before the worker has logged it: stop the server, so its
    // log is complete, before counting.
    assert!(again.terminate().success());
    let counts = done_counts(&[log, again.log()]);
    assert!(
        ids.iter().all(|id| counts.get(id) == Some(&1)),
        "{counts:?}"
    );
}
