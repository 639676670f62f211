//! One process of the service: the API (or only health and metrics, for `--role worker`), the
//! worker when this process has the model, the purge, and the shutdown on SIGTERM or Ctrl-C:
//! uploads get 503 at once, the forward pass in progress is finished and its results stored,
//! queued jobs stay in the store, and the process exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method};
use tokio::sync::watch;
use tower_http::cors::CorsLayer;

use crate::api::{self, Api};
use crate::model::ModelError;
use crate::purge;
use crate::worker::Worker;

/// How often expired jobs are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What this process runs.
pub struct Server {
    pub listen: SocketAddr,
    pub api: Arc<Api>,
    /// Serve the upload API and page (`--role all|api`), or only `/healthz` and `/metrics`.
    pub serve_api: bool,
    /// The worker, when this process loads the model (`--role all|worker`).
    pub worker: Option<Worker>,
    /// `--cors-origin`: a front end on another origin may call the API.
    pub cors_origin: Option<HeaderValue>,
}

impl Server {
    /// Serves until SIGTERM or Ctrl-C, then drains; prints `listening on http://ADDR` once bound.
    pub async fn run(self) -> Result<(), ServeError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ServeError::Http)?;
        let (stop_tx, stop) = watch::channel(false);
        let api = self.api.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("stopping: finishing the batch in progress; queued jobs stay stored");
            api.drain();
            let _ = stop_tx.send(true);
        });

        let worker = self.worker.map(|mut w| {
            // Emailed links default to the address actually bound (`--listen` may say port 0).
            w.config
                .public_url
                .get_or_insert_with(|| format!("http://{addr}"));
            let (wake, stop) = (self.api.wake.clone(), stop.clone());
            tokio::spawn(w.run(wake, stop))
        });
        if self.serve_api {
            let (jobs, blobs) = (self.api.jobs.clone(), self.api.blobs.clone());
            tokio::spawn(purge::run(jobs, blobs, PURGE_EVERY, stop.clone()));
        }

        let mut app = if self.serve_api {
            api::router(self.api.clone()).merge(crate::page::router())
        } else {
            api::ops_router().with_state(self.api.clone())
        };
        if let Some(origin) = self.cors_origin {
            app = app.layer(cors(origin));
        }
        eprintln!("listening on http://{addr}");

        // The worker's end (a finished batch after a stop, or a dead model thread) ends the
        // HTTP side too.
        let (done_tx, mut done) = watch::channel(None::<Result<(), ModelError>>);
        let mut stopped = stop.clone();
        tokio::spawn(async move {
            let result = match worker {
                Some(handle) => match handle.await {
                    Ok(r) => r,
                    Err(_) => Err(ModelError::Stopped),
                },
                None => {
                    let _ = stopped.wait_for(|s| *s).await;
                    Ok(())
                }
            };
            let _ = done_tx.send(Some(result));
        });
        let mut wait_done = done.clone();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = wait_done.wait_for(|d| d.is_some()).await;
        })
        .await
        .map_err(ServeError::Http)?;
        let result = done
            .wait_for(|d| d.is_some())
            .await
            .ok()
            .and_then(|d| d.clone());
        result.unwrap_or(Ok(())).map_err(ServeError::from)
    }
}

fn cors(origin: HeaderValue) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ])
}

/// SIGTERM (what orchestrators send) or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
