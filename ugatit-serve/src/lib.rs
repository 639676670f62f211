//! The selfie2anime service: a JSON API that accepts an image and a crop box, stores both
//! durably and queues a job; workers that own the model, translate queued jobs in batches and
//! store the results; private results behind signed, expiring links.
//!
//! - [`jobs`]: the job store trait (a durable queue with leases) and its SQLite implementation.
//! - [`blobs`]: where inputs and results are kept, and the local-folder implementation.
//! - [`notify`]: the seam through which a finished job is announced (email).

pub mod blobs;
pub mod jobs;
pub mod notify;
