//! The selfie2anime service: a JSON API that accepts an image and a crop box, stores both
//! durably and queues a job; workers that own the model, translate queued jobs in batches and
//! store the results; private results behind signed, expiring links.
//!
//! - [`api`]: the HTTP handlers (accept, store, enqueue, answer; status, results, deletion).
//! - [`jobs`]: the job store trait (a durable queue with leases), SQLite and Redis.
//! - [`blobs`]: where uploads and results are kept: a local folder or a bucket.
//! - [`worker`] and [`model`]: claiming jobs, batching them through the model on its thread.
//! - [`links`]: signed expiring result links and delete tokens; [`ratelimit`]; [`metrics`].
//! - [`notify`] and [`mail`]: telling the user by email; [`page`]: the upload page.
//! - [`server`]: one process, its roles and its shutdown; [`backends`]: stores by flag.

pub mod api;
pub mod backends;
pub mod blobs;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod page;
pub mod purge;
pub mod ratelimit;
pub mod server;
pub mod worker;
