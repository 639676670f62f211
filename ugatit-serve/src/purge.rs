//! Privacy by default: once a job's links have expired, its record, upload and result go.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::blobs::{BlobKey, BlobStore};
use crate::jobs::{unix_now, JobStore};

/// Jobs purged per store query.
const PAGE: usize = 100;

/// Deletes every job expired by now, record first (so a worker still holding one finds it
/// gone and removes its own result), then its blobs. Returns how many were purged.
pub async fn purge_expired(jobs: &dyn JobStore, blobs: &dyn BlobStore) -> Result<usize, String> {
    let mut purged = 0;
    loop {
        let expired = jobs
            .expired(unix_now(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for id in &expired {
            jobs.delete(id).await.map_err(|e| e.to_string())?;
            for key in [BlobKey::input(id), BlobKey::result(id)] {
                blobs.delete(&key).await.map_err(|e| e.to_string())?;
            }
        }
        purged += expired.len();
        if expired.len() < PAGE {
            return Ok(purged);
        }
    }
}

/// Purges every `every` until `stop` turns true.
pub async fn run(
    jobs: Arc<dyn JobStore>,
    blobs: Arc<dyn BlobStore>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        match purge_expired(jobs.as_ref(), blobs.as_ref()).await {
            Ok(0) => {}
            Ok(n) => eprintln!("purged {n} expired jobs"),
            Err(e) => eprintln!("purge: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}
