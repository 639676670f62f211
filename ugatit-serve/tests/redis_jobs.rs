//! The Redis job store against a real `redis-server` on a loopback port: the queue limit,
//! positions, claims and leases (a lapsed lease is taken over with XAUTOCLAIM, a renewed one
//! is not), idempotent completion, failure, deletion and expiry; and the atomicity the trait
//! promises under concurrent enqueues and claims from several connections.

mod services;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ugatit_serve::jobs::redis::RedisJobs;
use ugatit_serve::jobs::{
    unix_now, Completion, CropRequest, JobError, JobId, JobSpec, JobState, JobStore,
};

fn spec(expires_at: u64) -> JobSpec {
    JobSpec {
        crop: CropRequest::Box {
            x: 1,
            y: 2,
            w: 30,
            h: 30,
        },
        email: Some("a@example.com".into()),
        delete_hash: "00".repeat(32),
        created_at: unix_now(),
        expires_at,
    }
}

async fn enqueue(store: &RedisJobs, limit: u64) -> Result<JobId, JobError> {
    let id = JobId::random().unwrap();
    store.enqueue(&id, &spec(unix_now() + 3600), limit).await?;
    Ok(id)
}

async fn state(store: &RedisJobs, id: &JobId) -> Option<JobState> {
    store.get(id).await.unwrap().map(|j| j.state)
}

#[tokio::test]
async fn the_queue_with_limits_positions_leases_and_idempotent_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = services::redis(dir.path());
    let store = RedisJobs::connect(&url).await.unwrap();
    let lease = Duration::from_secs(60);

    let a = enqueue(&store, 3).await.unwrap();
    let b = enqueue(&store, 3).await.unwrap();
    let c = enqueue(&store, 3).await.unwrap();
    assert!(matches!(
        enqueue(&store, 3).await,
        Err(JobError::QueueFull { limit: 3 })
    ));
    assert_eq!(store.queue_len().await.unwrap(), 3);
    let job = store.get(&a).await.unwrap().unwrap();
    assert_eq!(job.spec, spec(job.spec.expires_at));
    assert_eq!(job.state, JobState::Queued);
    for (id, n) in [(&a, 1), (&b, 2), (&c, 3)] {
        assert_eq!(store.position(id).await.unwrap(), Some(n));
    }

    // Claims come in enqueue order; a claimed job is running and has no position.
    let first = store.claim("w1", 1, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, a);
    assert_eq!(first[0].state, JobState::Running);
    assert_eq!(state(&store, &a).await, Some(JobState::Running));
    assert_eq!(store.position(&a).await.unwrap(), None);
    assert_eq!(store.position(&b).await.unwrap(), Some(1));
    // Running jobs still count against the limit.
    assert_eq!(store.queue_len().await.unwrap(), 3);

    // Complete is idempotent and frees a place in the queue; fail after done changes nothing.
    assert_eq!(store.complete(&a).await.unwrap(), Completion::First);
    assert_eq!(store.complete(&a).await.unwrap(), Completion::Again);
    assert_eq!(store.fail(&a, "late").await.unwrap(), Completion::Again);
    assert_eq!(state(&store, &a).await, Some(JobState::Done));
    assert_eq!(store.queue_len().await.unwrap(), 2);
    enqueue(&store, 3).await.unwrap();

    let rest = store.claim("w2", 2, lease).await.unwrap();
    let ids: Vec<_> = rest.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [b.clone(), c.clone()]);
    assert_eq!(
        store.fail(&b, "not a face").await.unwrap(),
        Completion::First
    );
    assert_eq!(
        state(&store, &b).await,
        Some(JobState::Failed("not a face".into()))
    );
    assert_eq!(store.complete(&b).await.unwrap(), Completion::Again);

    // Deleting a running job: its worker learns the job is gone when it finishes.
    assert!(store.delete(&c).await.unwrap());
    assert!(!store.delete(&c).await.unwrap());
    assert_eq!(store.get(&c).await.unwrap(), None);
    assert_eq!(store.complete(&c).await.unwrap(), Completion::Gone);
    assert_eq!(store.queue_len().await.unwrap(), 1);

    // A deleted queued job is never handed to a worker.
    let d = enqueue(&store, 10).await.unwrap();
    let e = enqueue(&store, 10).await.unwrap();
    assert!(store.delete(&d).await.unwrap());
    let claimed = store.claim("w3", 10, lease).await.unwrap();
    let ids: HashSet<_> = claimed.iter().map(|j| j.id.clone()).collect();
    assert!(ids.contains(&e) && !ids.contains(&d), "{ids:?}");
    assert_eq!(store.claim("w3", 10, lease).await.unwrap(), []);
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_a_renewed_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = services::redis(dir.path());
    let store = RedisJobs::connect(&url).await.unwrap();
    // Long next to the renewal period below, so a slow machine does not lapse the renewed one.
    let short = Duration::from_millis(1000);

    let lapsing = enqueue(&store, 10).await.unwrap();
    let renewed = enqueue(&store, 10).await.unwrap();
    let waiting = enqueue(&store, 10).await.unwrap();
    assert_eq!(store.claim("dead", 1, short).await.unwrap()[0].id, lapsing);
    assert_eq!(store.claim("alive", 1, short).await.unwrap()[0].id, renewed);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .renew("alive", std::slice::from_ref(&renewed), short)
            .await
            .unwrap();
    }
    // 1.2 s on: the dead worker's lease has run out, the renewed one has not.
    assert_eq!(state(&store, &lapsing).await, Some(JobState::Queued));
    assert_eq!(state(&store, &renewed).await, Some(JobState::Running));
    // The lapsed job is claimed first, ahead of the one that never ran.
    assert_eq!(store.position(&lapsing).await.unwrap(), Some(1));
    assert_eq!(store.position(&waiting).await.unwrap(), Some(2));

    let taken = store.claim("heir", 1, short).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, lapsing);
    // The old holder can no longer renew it: renewing skips it, and the heir keeps it.
    store
        .renew(
            "dead",
            std::slice::from_ref(&lapsing),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let next = store.claim("other", 5, short).await.unwrap();
    assert_eq!(
        next.iter().map(|j| &j.id).collect::<Vec<_>>(),
        [&waiting],
        "only the job that never ran is claimable"
    );

    // Both the dead worker (late) and the heir complete: one completion counts.
    assert_eq!(store.complete(&lapsing).await.unwrap(), Completion::First);
    assert_eq!(store.complete(&lapsing).await.unwrap(), Completion::Again);
}

#[tokio::test]
async fn expired_jobs_are_listed_for_the_purge() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = services::redis(dir.path());
    let store = RedisJobs::connect(&url).await.unwrap();
    let now = unix_now();
    let old = JobId::random().unwrap();
    let fresh = JobId::random().unwrap();
    store.enqueue(&old, &spec(now + 100), 10).await.unwrap();
    store.enqueue(&fresh, &spec(now + 1000), 10).await.unwrap();
    assert_eq!(store.expired(now, 10).await.unwrap(), []);
    assert_eq!(
        store.expired(now + 100, 10).await.unwrap(),
        std::slice::from_ref(&old)
    );
    assert_eq!(store.expired(now + 5000, 1).await.unwrap().len(), 1);
    assert!(store.delete(&old).await.unwrap());
    assert_eq!(store.expired(now + 5000, 10).await.unwrap(), [fresh]);
}

#[tokio::test]
async fn concurrent_enqueues_respect_the_limit_and_claims_never_share_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, url) = services::redis(dir.path());
    // Separate connections, as separate processes would have.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(RedisJobs::connect(&url).await.unwrap()));
    }

    let tries = (0..40).map(|i| {
        let store = stores[i % stores.len()].clone();
        tokio::spawn(async move { enqueue(&store, 25).await })
    });
    let results = futures::future::join_all(tries).await;
    let accepted = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(JobError::QueueFull { .. }))))
        .count();
    assert_eq!((accepted, full), (25, 15));

    let claims = (0..8).map(|i| {
        let store = stores[i % stores.len()].clone();
        tokio::spawn(async move {
            store
                .claim(&format!("w{i}"), 4, Duration::from_secs(60))
                .await
                .unwrap()
        })
    });
    let mut seen = HashSet::new();
    for claimed in futures::future::join_all(claims).await {
        for job in claimed.unwrap() {
            assert!(seen.insert(job.id.clone()), "{} claimed twice", job.id);
        }
    }
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn a_bad_url_is_named() {
    let err = RedisJobs::connect("redis://:secret@127.0.0.1:1/0")
        .await
        .err()
        .expect("nothing listens on port 1");
    let text = err.to_string();
    assert!(text.contains("redis://***@127.0.0.1:1/0"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
