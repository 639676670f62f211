//! Telling a user that their job is finished (by email, when `--smtp` is given): the seam
//! between the worker, which knows when a job is done and its links, and the mailer.

/// A notification that could not be sent, in one line.
#[derive(Debug, thiserror::Error)]
#[error("notify {to}: {message}")]
pub struct NotifyError {
    pub to: String,
    pub message: String,
}

/// What a finished job's message carries: absolute URLs, valid until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The address the user gave at upload.
    pub to: String,
    /// The signed result link (or the bucket's presigned URL).
    pub result_url: String,
    /// The `GET /d/{id}?token=` link that deletes the job.
    pub delete_url: String,
    /// Unix seconds when both links stop working.
    pub expires_at: u64,
}

/// Sends one message per finished job. Called by the worker after the job is completed, once
/// for each [`crate::jobs::Completion::First`]; a failure is logged and not retried (the user
/// still has the status page).
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + 'static {
    async fn job_done(&self, message: &Finished) -> Result<(), NotifyError>;
}
