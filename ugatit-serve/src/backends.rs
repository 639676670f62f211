//! The stores and the mailer named on the command line: `--queue sqlite|redis://...`,
//! `--results DIR|s3://...|gs://...|az://...`, `--smtp URL --mail-from ADDR`.

use std::path::Path;
use std::sync::Arc;

use crate::blobs::bucket::BucketBlobs;
use crate::blobs::local::LocalBlobs;
use crate::blobs::{BlobError, BlobStore};
use crate::jobs::redis::RedisJobs;
use crate::jobs::sqlite::SqliteJobs;
use crate::jobs::{JobError, JobStore};
use crate::mail::{MailError, Mailer};
use crate::notify::Notifier;

/// A store or mailer that could not be set up, in one line.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--queue {0:?}: use sqlite or redis://HOST:PORT[/DB]")]
    Queue(String),
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("--smtp and --mail-from go together: give both or neither")]
    MailPair,
}

/// The SQLite file of the embedded job store in the data folder.
pub const SQLITE_FILE: &str = "jobs.sqlite";

/// `--queue`: `sqlite` (the embedded store, `DATA_DIR/jobs.sqlite`) or a Redis URL.
pub async fn open_jobs(queue: &str, data_dir: &Path) -> Result<Arc<dyn JobStore>, SetupError> {
    if queue == "sqlite" {
        Ok(Arc::new(SqliteJobs::open(&data_dir.join(SQLITE_FILE))?))
    } else if queue.starts_with("redis://") || queue.starts_with("rediss://") {
        Ok(Arc::new(RedisJobs::connect(queue).await?))
    } else {
        Err(SetupError::Queue(queue.to_string()))
    }
}

/// `--results`: a bucket URL, or a local folder (by default `DATA_DIR/blobs`).
pub fn open_blobs(
    results: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn BlobStore>, SetupError> {
    Ok(match results {
        Some(url) if url.contains("://") => Arc::new(BucketBlobs::open(url)?),
        Some(dir) => Arc::new(LocalBlobs::open(Path::new(dir))?),
        None => Arc::new(LocalBlobs::open(&data_dir.join("blobs"))?),
    })
}

/// `--smtp` with `--mail-from`: the mailer, or none without them.
pub fn open_mailer(
    smtp: Option<&str>,
    from: Option<&str>,
) -> Result<Option<Arc<dyn Notifier>>, SetupError> {
    match (smtp, from) {
        (Some(smtp), Some(from)) => Ok(Some(Arc::new(Mailer::new(smtp, from)?))),
        (None, None) => Ok(None),
        _ => Err(SetupError::MailPair),
    }
}
