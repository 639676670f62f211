//! The job store: a durable queue of translation jobs shared by the API (which enqueues and
//! reports) and the workers (which claim, complete and fail), behind one object-safe trait with
//! an embedded implementation ([`sqlite`]) and one for several machines (Redis Streams).
//!
//! # Lifecycle
//!
//! ```text
//! enqueue -> Queued --claim--> Running --complete--> Done
//!              ^                  |     \--fail----> Failed
//!              +--lease runs out--+
//! ```
//!
//! A worker claims jobs with a *lease* (a visibility timeout): while the lease runs, no other
//! claim returns the job; once it has run out (the worker died or stalled), the job is claimable
//! again, by any worker, and reports as `Queued`. A worker that is still busy extends its leases
//! with [`JobStore::renew`]. So a job may be processed more than once, but never lost; since the
//! result is stored under a key fixed by the job id before [`JobStore::complete`] is called, and
//! `complete` is idempotent, a job done twice still has exactly one result and one `Done`
//! record. A job is acknowledged (completed or failed) only after its result is stored.
//!
//! Times are the store's own clock: leases in wall-clock durations, expiry in Unix seconds.

mod job;
pub mod redis;
pub mod sqlite;

use std::time::Duration;

pub use job::{BadJobId, CropRequest, Job, JobId, JobSpec, JobState};

/// A job store failure, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// [`JobStore::enqueue`] found `limit` unfinished jobs already.
    #[error("the queue is full ({limit} jobs waiting); try again later")]
    QueueFull { limit: u64 },
    /// The store could not be read or written; the message names the store and the problem.
    #[error("job store: {0}")]
    Store(String),
}

/// What [`JobStore::complete`] or [`JobStore::fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The job was queued or running and is now finished: count it once.
    First,
    /// The job had already finished (done or failed); nothing changed.
    Again,
    /// There is no such job (it was deleted, by its owner or by the purge, while it ran): the
    /// caller should delete the result it stored.
    Gone,
}

/// A durable job queue with leases. Every method is atomic with respect to every other, across
/// processes sharing the store; `Ok` from a method that writes means the write survives a crash
/// of the process and of the machine (SQLite: committed with `synchronous=FULL`; Redis: as
/// durable as the server's persistence settings).
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores `spec` as a new `Queued` job at the end of the queue, unless `limit` or more jobs
    /// are unfinished ([`JobStore::queue_len`]): then [`JobError::QueueFull`] and nothing is
    /// stored. The check and the insert are one atomic step, so concurrent enqueues never
    /// overshoot the limit. `id` is fresh (random); enqueueing an existing id is an error.
    async fn enqueue(&self, id: &JobId, spec: &JobSpec, limit: u64) -> Result<(), JobError>;

    /// The job, or `None` if there is no such job (never created, deleted or purged).
    /// A claimed job whose lease has run out reads as `Queued`.
    async fn get(&self, id: &JobId) -> Result<Option<Job>, JobError>;

    /// Where a `Queued` job stands: 1 if the next claim takes it, `n` if `n - 1` claimable
    /// jobs come before it in claim order. `None` for a job that is not `Queued` (running,
    /// finished) or does not exist.
    async fn position(&self, id: &JobId) -> Result<Option<u64>, JobError>;

    /// The number of unfinished jobs: `Queued` plus `Running`. This is what
    /// [`JobStore::enqueue`] compares with its limit and what `/metrics` reports.
    async fn queue_len(&self) -> Result<u64, JobError>;

    /// Claims up to `max` claimable jobs (`Queued`, including those whose lease ran out), in
    /// claim order (oldest enqueue first), for `worker` (a name unique to the claiming process),
    /// leased until `lease` from now. Returns at once, with no jobs if none are claimable; the
    /// returned jobs are `Running`. Two concurrent claims never return the same job while its
    /// lease runs.
    async fn claim(&self, worker: &str, max: usize, lease: Duration) -> Result<Vec<Job>, JobError>;

    /// Extends to `lease` from now the leases that `worker` still holds on `ids`. Ids it no
    /// longer holds (finished, deleted, or reclaimed by another worker after the lease ran out)
    /// are skipped without error.
    async fn renew(&self, worker: &str, ids: &[JobId], lease: Duration) -> Result<(), JobError>;

    /// Marks the job `Done`, whoever holds its lease (or none). Idempotent: the first call
    /// returns [`Completion::First`], later ones [`Completion::Again`] and change nothing (a
    /// failed job stays failed); a missing job gives [`Completion::Gone`]. Call it only after
    /// the result is stored.
    async fn complete(&self, id: &JobId) -> Result<Completion, JobError>;

    /// Marks the job `Failed` with `error` (one line, shown to the user). Same idempotency as
    /// [`JobStore::complete`]: a finished job keeps its state and gives [`Completion::Again`].
    async fn fail(&self, id: &JobId, error: &str) -> Result<Completion, JobError>;

    /// Removes the job's record in any state; `true` if it existed. A worker holding it will
    /// get [`Completion::Gone`]. The job's blobs are the caller's to delete.
    async fn delete(&self, id: &JobId) -> Result<bool, JobError>;

    /// Up to `max` jobs whose `expires_at` is at or before `now` (Unix seconds), in any state,
    /// for the purge to delete with their blobs.
    async fn expired(&self, now: u64, max: usize) -> Result<Vec<JobId>, JobError>;
}

/// Seconds since the Unix epoch by the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
