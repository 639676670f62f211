//! The HTTP API (JSON everywhere, errors as `{"error": "..."}`):
//!
//! - `POST /api/v1/jobs` (`upload.rs`): accept, store, enqueue, answer 202.
//! - `GET /api/v1/jobs/{id}`, `DELETE /api/v1/jobs/{id}`, `GET /d/{id}?token=` (`status.rs`).
//! - `GET /r/{id}.png?exp=&sig=` (`results.rs`): the signed result link.
//! - `GET /healthz`, `GET /metrics`.

mod error;
mod results;
mod status;
mod upload;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{Notify, Semaphore};
use ugatit_model::Direction;

use crate::blobs::BlobStore;
use crate::jobs::JobStore;
use crate::links::Signer;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

pub use error::ApiError;

/// Uploads read and decoded at once; the others wait their turn, so memory stays below about
/// this many times `--max-upload` plus their decoded pixels.
pub const CONCURRENT_UPLOADS: usize = 16;

/// The API's limits and settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body in bytes (`--max-upload`).
    pub max_upload: usize,
    /// Largest image in pixels, checked before decoding (`--max-pixels`).
    pub max_pixels: u64,
    /// Most unfinished jobs (`--queue-size`).
    pub queue_size: u64,
    /// How long result and delete links work (`--link-ttl`).
    pub link_ttl: Duration,
    /// The direction this service translates (`--direction`).
    pub direction: Direction,
    /// Uploads an hour per client address (`--rate-limit`); 0 for no limit.
    pub rate_limit: usize,
    /// Take the client address from `X-Forwarded-For` (`--trust-proxy`).
    pub trust_proxy: bool,
}

/// Everything the handlers share.
pub struct Api {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub signer: Arc<Signer>,
    pub metrics: Arc<Metrics>,
    pub config: ApiConfig,
    /// Notified on every enqueue, for a worker in the same process.
    pub wake: Arc<Notify>,
    limiter: Option<RateLimiter>,
    uploads: Semaphore,
    draining: AtomicBool,
}

impl Api {
    pub fn new(
        jobs: Arc<dyn JobStore>,
        blobs: Arc<dyn BlobStore>,
        signer: Arc<Signer>,
        metrics: Arc<Metrics>,
        config: ApiConfig,
    ) -> Self {
        Self {
            jobs,
            blobs,
            signer,
            metrics,
            limiter: (config.rate_limit > 0).then(|| RateLimiter::new(config.rate_limit)),
            config,
            wake: Arc::new(Notify::new()),
            uploads: Semaphore::new(CONCURRENT_UPLOADS),
            draining: AtomicBool::new(false),
        }
    }

    /// From now on uploads get 503 and `/healthz` reports draining (SIGTERM).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The client's address: the peer's, or with `--trust-proxy` the last `X-Forwarded-For`
    /// entry (the one our proxy appended; earlier ones are whatever the client sent).
    fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded = || {
            let value = headers.get("x-forwarded-for")?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        };
        match self.config.trust_proxy {
            true => forwarded().unwrap_or(peer.ip()),
            false => peer.ip(),
        }
    }
}

/// The full API: jobs, results, deletion, health and metrics.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/jobs", axum::routing::post(upload::upload))
        .route(
            "/api/v1/jobs/{id}",
            get(status::status).delete(status::delete),
        )
        .route("/d/{id}", get(status::delete_link))
        .route("/r/{file}", get(results::result))
        .merge(ops_router())
        .with_state(api)
}

/// Only `/healthz` and `/metrics`: what a `--role worker` process serves.
pub fn ops_router() -> Router<Arc<Api>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(api): State<Arc<Api>>) -> impl IntoResponse {
    if api.draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "draining"})),
        )
    } else {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    }
}

async fn metrics(State(api): State<Arc<Api>>) -> Result<impl IntoResponse, ApiError> {
    let queued = api.jobs.queue_len().await.map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        api.metrics.render(queued),
    ))
}
