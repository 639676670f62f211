//! While stopping (SIGTERM), uploads get 503 with Retry-After and `/healthz` says draining,
//! through the library API: an API-only router on a loopback port over a SQLite store.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{client, get_json, picture, png};
use ugatit_model::Direction;
use ugatit_serve::api::{router, Api, ApiConfig};
use ugatit_serve::blobs::local::LocalBlobs;
use ugatit_serve::jobs::sqlite::SqliteJobs;
use ugatit_serve::links::Signer;
use ugatit_serve::metrics::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_server_refuses_uploads_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(Api::new(
        Arc::new(SqliteJobs::open(&dir.path().join("jobs.sqlite")).unwrap()),
        Arc::new(LocalBlobs::open(&dir.path().join("blobs")).unwrap()),
        Arc::new(Signer::new([1; 32])),
        Arc::new(Metrics::default()),
        ApiConfig {
            max_upload: 1 << 20,
            max_pixels: 1 << 20,
            queue_size: 10,
            link_ttl: Duration::from_secs(60),
            direction: Direction::A2B,
            rate_limit: 0,
            trust_proxy: false,
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(api.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let c = client();
    let post = || {
        let part = reqwest::multipart::Part::bytes(png(&picture()));
        c.post(format!("{base}/api/v1/jobs"))
            .multipart(reqwest::multipart::Form::new().part("image", part))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 202);
    api.drain();
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "the server is shutting down; try again");
    let (code, health) = get_json(&c, &format!("{base}/healthz")).await;
    assert_eq!((code, health["status"].as_str()), (503, Some("draining")));
}
