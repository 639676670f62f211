//! The embedded job store: one SQLite file in the data folder (`rusqlite`, SQLite compiled in),
//! in WAL mode with `synchronous=FULL`, so every committed enqueue and completion is on disk
//! when the call returns, and several processes on one machine (`--role api` beside
//! `--role worker`) can share it.
//!
//! One table; a job is `open` until done or failed. An open job is *running* while its
//! `lease_until` (Unix milliseconds) is in the future, and claimable otherwise, so a crashed
//! worker's jobs come back by themselves. Claim order is `seq`, the insertion order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{Completion, Job, JobError, JobId, JobSpec, JobState, JobStore};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'done', 'failed')),
    worker TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expires_at);
";

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Jobs in a SQLite file.
#[derive(Clone)]
pub struct SqliteJobs {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteJobs {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, JobError> {
        let fail = |e: rusqlite::Error| JobError::Store(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` on the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, JobError> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        let fail =
            move |e: &dyn std::fmt::Display| JobError::Store(format!("{}: {e}", path.display()));
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(fail(&e)),
            Err(e) => Err(fail(&e)),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A row's job; `spec` is JSON written by this module.
fn to_job(
    id: String,
    spec: String,
    state: String,
    lease_until: i64,
    error: Option<String>,
    now: i64,
) -> rusqlite::Result<Job> {
    let bad = |e: &dyn std::fmt::Display| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("job {id}: {e}").into(),
        )
    };
    let spec: JobSpec = serde_json::from_str(&spec).map_err(|e| bad(&e))?;
    let state = match state.as_str() {
        "done" => JobState::Done,
        "failed" => JobState::Failed(error.unwrap_or_default()),
        _ if lease_until > now => JobState::Running,
        _ => JobState::Queued,
    };
    let id = id.parse().map_err(|e| bad(&e))?;
    Ok(Job { id, spec, state })
}

/// Marks an open job finished as `state`; see [`Completion`].
fn finish(
    conn: &mut Connection,
    id: &str,
    state: &str,
    error: Option<&str>,
) -> rusqlite::Result<Completion> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Option<String> = tx
        .query_row("SELECT state FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let outcome = match current.as_deref() {
        None => Completion::Gone,
        Some("open") => {
            tx.execute(
                "UPDATE jobs SET state = ?2, error = ?3, worker = NULL, lease_until = 0 \
                 WHERE id = ?1",
                params![id, state, error],
            )?;
            Completion::First
        }
        Some(_) => Completion::Again,
    };
    tx.commit()?;
    Ok(outcome)
}

#[async_trait::async_trait]
impl JobStore for SqliteJobs {
    async fn enqueue(&self, id: &JobId, spec: &JobSpec, limit: u64) -> Result<(), JobError> {
        let id = id.to_string();
        let json = serde_json::to_string(spec).map_err(|e| JobError::Store(e.to_string()))?;
        let expires = spec.expires_at as i64;
        let full = self
            .with(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let open: i64 =
                    tx.query_row("SELECT count(*) FROM jobs WHERE state = 'open'", [], |r| {
                        r.get(0)
                    })?;
                if open as u64 >= limit {
                    return Ok(true);
                }
                tx.execute(
                    "INSERT INTO jobs (id, spec, state, expires_at) VALUES (?1, ?2, 'open', ?3)",
                    params![id, json, expires],
                )?;
                tx.commit()?;
                Ok(false)
            })
            .await?;
        if full {
            Err(JobError::QueueFull { limit })
        } else {
            Ok(())
        }
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobError> {
        let id = id.to_string();
        self.with(move |conn| {
            let row = conn
                .query_row(
                    "SELECT id, spec, state, lease_until, error FROM jobs WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            row.map(|(id, spec, state, lease, error)| {
                to_job(id, spec, state, lease, error, now_ms())
            })
            .transpose()
        })
        .await
    }

    async fn position(&self, id: &JobId) -> Result<Option<u64>, JobError> {
        let id = id.to_string();
        self.with(move |conn| {
            let now = now_ms();
            let seq: Option<i64> = conn
                .query_row(
                    "SELECT seq FROM jobs WHERE id = ?1 AND state = 'open' AND lease_until <= ?2",
                    params![id, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(seq) = seq else { return Ok(None) };
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM jobs WHERE state = 'open' AND lease_until <= ?1 AND seq <= ?2",
                params![now, seq],
                |r| r.get(0),
            )?;
            Ok(Some(n as u64))
        })
        .await
    }

    async fn queue_len(&self) -> Result<u64, JobError> {
        self.with(|conn| {
            conn.query_row("SELECT count(*) FROM jobs WHERE state = 'open'", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await
        .map(|n| n as u64)
    }

    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> Result<Vec<Job>, JobError> {
        let worker = worker.to_string();
        self.with(move |conn| {
            let now = now_ms();
            let until = now.saturating_add(lease.as_millis() as i64);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(String, String)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, spec FROM jobs WHERE state = 'open' AND lease_until <= ?1 \
                     ORDER BY seq LIMIT ?2",
                )?;
                let rows =
                    stmt.query_map(params![now, max as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut jobs = Vec::with_capacity(rows.len());
            for (id, spec) in rows {
                tx.execute(
                    "UPDATE jobs SET worker = ?2, lease_until = ?3 WHERE id = ?1",
                    params![id, worker, until],
                )?;
                jobs.push(to_job(id, spec, "open".into(), until, None, now)?);
            }
            tx.commit()?;
            Ok(jobs)
        })
        .await
    }

    async fn renew(&self, worker: &str, ids: &[JobId], lease: Duration) -> Result<(), JobError> {
        let worker = worker.to_string();
        let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        self.with(move |conn| {
            let until = now_ms().saturating_add(lease.as_millis() as i64);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for id in &ids {
                tx.execute(
                    "UPDATE jobs SET lease_until = ?3 \
                     WHERE id = ?1 AND worker = ?2 AND state = 'open'",
                    params![id, worker, until],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn complete(&self, id: &JobId) -> Result<Completion, JobError> {
        let id = id.to_string();
        self.with(move |conn| finish(conn, &id, "done", None)).await
    }

    async fn fail(&self, id: &JobId, error: &str) -> Result<Completion, JobError> {
        let id = id.to_string();
        let error = error.to_string();
        self.with(move |conn| finish(conn, &id, "failed", Some(&error)))
            .await
    }

    async fn delete(&self, id: &JobId) -> Result<bool, JobError> {
        let id = id.to_string();
        self.with(move |conn| conn.execute("DELETE FROM jobs WHERE id = ?1", [id]))
            .await
            .map(|n| n > 0)
    }

    async fn expired(&self, now: u64, max: usize) -> Result<Vec<JobId>, JobError> {
        let ids: Vec<String> = self
            .with(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id FROM jobs WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![now as i64, max as i64], |r| r.get(0))?;
                rows.collect()
            })
            .await?;
        ids.into_iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: super::BadJobId| JobError::Store(e.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::CropRequest;

    fn spec(expires_at: u64) -> JobSpec {
        JobSpec {
            crop: CropRequest::Center,
            email: None,
            delete_hash: "h".into(),
            created_at: 0,
            expires_at,
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteJobs, Vec<JobId>) {
        let dir = tempfile::tempdir().unwrap();
        let jobs = SqliteJobs::open(&dir.path().join("jobs.sqlite")).unwrap();
        let mut ids = Vec::new();
        for i in 0..3 {
            let id = JobId::random().unwrap();
            jobs.enqueue(&id, &spec(100 + i), 3).await.unwrap();
            ids.push(id);
        }
        (dir, jobs, ids)
    }

    #[tokio::test]
    async fn the_limit_holds_and_positions_follow_claims() {
        let (_dir, jobs, ids) = store().await;
        let extra = JobId::random().unwrap();
        assert_eq!(
            jobs.enqueue(&extra, &spec(1), 3).await,
            Err(JobError::QueueFull { limit: 3 })
        );
        assert_eq!(jobs.get(&extra).await.unwrap(), None);
        assert_eq!(jobs.position(&ids[2]).await.unwrap(), Some(3));
        let claimed = jobs.claim("w", 2, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            claimed.iter().map(|j| &j.id).collect::<Vec<_>>(),
            [&ids[0], &ids[1]]
        );
        assert!(claimed.iter().all(|j| j.state == JobState::Running));
        assert_eq!(jobs.position(&ids[0]).await.unwrap(), None);
        assert_eq!(jobs.position(&ids[2]).await.unwrap(), Some(1));
        assert_eq!(jobs.queue_len().await.unwrap(), 3);
        assert_eq!(
            jobs.claim("v", 5, Duration::from_secs(60))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(jobs
            .claim("v", 5, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn an_expired_lease_makes_the_job_claimable_again_and_renewal_prevents_it() {
        let (_dir, jobs, ids) = store().await;
        let short = Duration::from_millis(200);
        let first = jobs.claim("dead", 1, short).await.unwrap();
        assert_eq!(first[0].id, ids[0]);
        let kept = jobs.claim("alive", 1, short).await.unwrap();
        jobs.renew("alive", &[kept[0].id.clone()], Duration::from_secs(60))
            .await
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            jobs.get(&ids[0]).await.unwrap().unwrap().state,
            JobState::Queued
        );
        assert_eq!(
            jobs.get(&ids[1]).await.unwrap().unwrap().state,
            JobState::Running
        );
        let again = jobs
            .claim("other", 3, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            again.iter().map(|j| &j.id).collect::<Vec<_>>(),
            [&ids[0], &ids[2]]
        );
    }

    #[tokio::test]
    async fn completion_is_idempotent_and_deletion_wins() {
        let (_dir, jobs, ids) = store().await;
        jobs.claim("w", 3, Duration::from_secs(60)).await.unwrap();
        assert_eq!(jobs.complete(&ids[0]).await.unwrap(), Completion::First);
        assert_eq!(jobs.complete(&ids[0]).await.unwrap(), Completion::Again);
        assert_eq!(jobs.fail(&ids[0], "late").await.unwrap(), Completion::Again);
        assert_eq!(
            jobs.get(&ids[0]).await.unwrap().unwrap().state,
            JobState::Done
        );
        assert_eq!(jobs.fail(&ids[1], "no").await.unwrap(), Completion::First);
        assert_eq!(
            jobs.get(&ids[1]).await.unwrap().unwrap().state,
            JobState::Failed("no".into())
        );
        assert!(jobs.delete(&ids[2]).await.unwrap());
        assert!(!jobs.delete(&ids[2]).await.unwrap());
        assert_eq!(jobs.complete(&ids[2]).await.unwrap(), Completion::Gone);
        assert_eq!(jobs.queue_len().await.unwrap(), 0);
        assert_eq!(jobs.expired(100, 10).await.unwrap(), [ids[0].clone()]);
        assert_eq!(jobs.expired(1000, 1).await.unwrap().len(), 1);
    }
}
