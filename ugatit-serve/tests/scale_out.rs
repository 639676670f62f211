//! Several machines, as separate processes of the real binary: one `--role api` and two
//! `--role worker` processes sharing a Redis queue (`--queue redis://`) and an S3 bucket
//! (`--results s3://`, a moto server). A worker is killed with SIGKILL while it holds a job;
//! the other takes the job over once the lease runs out, and every accepted job completes
//! exactly once: one `done` in the workers' logs, one result object, no input left behind,
//! and a result URL presigned by the bucket that downloads the image.

mod common;
mod services;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, get_json, png, upload, wait_finished, Server, SIZE};
use services::Moto;

const JOBS: usize = 12;
/// Short, so the test does not wait long for the takeover; renewed every third of it.
const LEASE: &str = "2s";

/// The flags every process of the service shares.
fn shared(redis: &str, bucket: &str, secret: &Path) -> Vec<String> {
    vec![
        "--queue".into(),
        redis.into(),
        "--results".into(),
        bucket.into(),
        "--secret-file".into(),
        secret.display().to_string(),
        "--lease".into(),
        LEASE.into(),
    ]
}

fn start(dir: &Path, role: &str, shared: &[String]) -> Server {
    let mut args: Vec<&str> = vec!["--role", role, "--rate-limit", "0"];
    args.extend(shared.iter().map(String::as_str));
    Server::start(dir, &args)
}

/// A photo-sized picture, so that decoding and cropping take a moment.
fn photo(seed: u32) -> Vec<u8> {
    png(&image::RgbImage::from_fn(1200, 900, |x, y| {
        image::Rgb([
            ((x + seed * 7) % 256) as u8,
            ((y * 3) % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    }))
}

/// The job ids the group's pending list holds for each worker process id: what each worker
/// has claimed and not yet finished. Worker names start with their process id.
async fn pending_by_pid(
    redis: &mut redis::aio::MultiplexedConnection,
) -> HashMap<u32, Vec<String>> {
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg("{ugatit}:queue")
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(100)
        .query_async(redis)
        .await
        .unwrap();
    let mut by_pid: HashMap<u32, Vec<String>> = HashMap::new();
    for (entry, consumer, _idle, _deliveries) in pending {
        let Some(pid) = consumer.split('-').next().and_then(|p| p.parse().ok()) else {
            continue;
        };
        by_pid.entry(pid).or_default().push(entry);
    }
    by_pid
}

/// The job id a queue entry carries.
async fn job_of(redis: &mut redis::aio::MultiplexedConnection, entry: &str) -> String {
    let found: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("{ugatit}:queue")
        .arg(entry)
        .arg(entry)
        .query_async(redis)
        .await
        .unwrap();
    let fields = &found.first().expect("the entry is in the stream").1;
    fields
        .iter()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.clone())
        .expect("an id field")
}

/// The ids a log reports done (`job ID done`).
fn done_in(log: &[String]) -> Vec<String> {
    log.iter()
        .filter_map(|l| l.strip_prefix("job ")?.strip_suffix(" done"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_an_api_share_redis_and_a_bucket_and_survive_a_killed_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, redis_url) = services::redis(&dir.path().join("redis"));
    let moto = Moto::start("serve");
    // object_store in every process reads its endpoint and credentials from these.
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let flags = shared(&redis_url, "s3://serve/selfies", &dir.path().join("secret"));
    let api = start(&dir.path().join("api"), "api", &flags);
    let mut workers = vec![
        start(&dir.path().join("w1"), "worker", &flags),
        start(&dir.path().join("w2"), "worker", &flags),
    ];
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let http = client();
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let (code, body, _) = upload(&http, &api, photo(i as u32), &[]).await;
        assert_eq!(code, 202, "{body}");
        jobs.push((
            body["id"].as_str().unwrap().to_string(),
            body["delete_token"].as_str().unwrap().to_string(),
        ));
    }

    // Catch a worker holding a job, and kill it then and there.
    let start_watch = Instant::now();
    let mut spares = 0;
    let (victim, held) = loop {
        let pending = pending_by_pid(&mut redis).await;
        if let Some(w) = workers
            .iter()
            .position(|w| pending.contains_key(&w.child.id()))
        {
            workers[w].kill9();
            // What the killed worker still holds now, it held when it died.
            let held = pending_by_pid(&mut redis)
                .await
                .remove(&workers[w].child.id());
            if let Some(entries) = held {
                let mut ids = Vec::new();
                for e in &entries {
                    ids.push(job_of(&mut redis, e).await);
                }
                break (workers.remove(w), ids);
            }
            // It finished its job just before it died: go on with a fresh worker.
            spares += 1;
            workers[w] = start(&dir.path().join(format!("spare{spares}")), "worker", &flags);
        }
        assert!(
            start_watch.elapsed() < Duration::from_secs(120),
            "never saw a worker holding a job"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };

    // Every job finishes, the killed worker's ones after its lease ran out.
    for (id, _) in &jobs {
        let status = wait_finished(&http, &api, id, Duration::from_secs(240)).await;
        assert_eq!(status["status"], "done", "{status}");
        assert_eq!(status.get("position"), None);
    }

    // Exactly once: each job reported done by one worker, the held ones by a survivor. A
    // worker logs a completion just after storing it, so its line may trail the status.
    let logged = || {
        let mut done = done_in(&victim.log());
        for w in &workers {
            done.extend(done_in(&w.log()));
        }
        done
    };
    let start_logs = Instant::now();
    while logged().len() < JOBS && start_logs.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = logged();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &done {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for (id, _) in &jobs {
        assert_eq!(counts.get(id.as_str()), Some(&1), "job {id}: {done:?}");
    }
    assert_eq!(done.len(), JOBS);
    for id in &held {
        assert!(!done_in(&victim.log()).contains(id), "{id}");
    }

    // One result object per job and nothing else; uploads deleted once their result is stored.
    let ids: BTreeSet<String> = jobs.iter().map(|(id, _)| id.clone()).collect();
    let results: BTreeSet<String> = moto
        .keys("selfies/results/")
        .iter()
        .map(|k| {
            k.strip_prefix("selfies/results/")
                .and_then(|k| k.strip_suffix(".png"))
                .unwrap_or(k)
                .to_string()
        })
        .collect();
    assert_eq!(results, ids);
    assert_eq!(moto.keys("selfies/inputs/"), Vec::<String>::new());
    let queue_left: u64 = redis::cmd("XLEN")
        .arg("{ugatit}:queue")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(queue_left, 0);

    // The result link is the bucket's own presigned URL, and it downloads the image.
    let (id, token) = &jobs[0];
    let (_, status) = get_json(&http, &api.url(&format!("/api/v1/jobs/{id}"))).await;
    let link = status["result_url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!(
            "{}/serve/selfies/results/{id}.png?",
            moto.endpoint()
        )) && link.contains("X-Amz-Signature="),
        "{link}"
    );
    let bytes = http.get(link).send().await.unwrap().bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).unwrap();
    assert_eq!((image.width(), image.height()), (SIZE as u32, SIZE as u32));

    // Deleting through the API removes the result from the bucket.
    let deleted = http
        .delete(api.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert!(!moto
        .keys("selfies/results/")
        .contains(&format!("selfies/results/{id}.png")));
    let (code, _) = get_json(&http, &api.url(&format!("/api/v1/jobs/{id}"))).await;
    assert_eq!(code, 404);
}
