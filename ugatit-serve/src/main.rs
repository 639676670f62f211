//! `ugatit-serve`: the selfie2anime service. `ugatit-serve --model M` runs everything in one
//! process on an embedded store under `./serve-data`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use ugatit_io::DeviceChoice;
use ugatit_model::Direction;
use ugatit_serve::api::{Api, ApiConfig};
use ugatit_serve::backends::{open_blobs, open_jobs, open_mailer};
use ugatit_serve::links::Signer;
use ugatit_serve::metrics::Metrics;
use ugatit_serve::model::{Model, ModelSpec};
use ugatit_serve::server::Server;
use ugatit_serve::worker::{Worker, WorkerConfig};

/// Large tensors on transparent huge pages, freed ones reused (the `ugatit-alloc` crate).
#[global_allocator]
static ALLOC: ugatit_alloc::HugePageAlloc = ugatit_alloc::HugePageAlloc::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// API, page and worker in one process.
    All,
    /// Accept uploads and answer status requests; no model.
    Api,
    /// Translate queued jobs; serves only /healthz and /metrics.
    Worker,
}

/// Serve a U-GAT-IT generator over HTTP: an upload page, a JSON API, a durable job queue and
/// private, expiring result links.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Any model `ugatit-infer` reads: an export, run folder, checkpoint, official .pt, TF
    /// checkpoint, or a bucket URL of one (needed by --role all and worker).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "a2b", value_parser = parse_direction)]
    direction: Direction,
    /// Side of the square the generator translates at (a light model: any multiple of 4).
    #[arg(long)]
    size: Option<usize>,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Embedded job store, local blobs and the secret live here.
    #[arg(long, default_value = "serve-data")]
    data_dir: PathBuf,
    /// The HMAC secret (made with mode 0600 when missing); every process of a service shares
    /// it. Default: DATA_DIR/secret.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Most jobs queued or running; uploads beyond get 503 with Retry-After.
    #[arg(long, default_value_t = 1000)]
    queue_size: u64,
    /// Jobs per forward pass (default 1 on the CPU, 8 on CUDA).
    #[arg(long)]
    max_batch: Option<usize>,
    /// Uploads an hour per client address; 0 turns the limit off.
    #[arg(long, default_value_t = 100)]
    rate_limit: usize,
    /// How long result and delete links work; results and records are purged then.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    link_ttl: Duration,
    /// How long a claimed job stays invisible to other workers without renewal (a dead
    /// worker's jobs come back after this).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    lease: Duration,
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    /// Job store: sqlite (DATA_DIR/jobs.sqlite) or redis://HOST:PORT[/DB].
    #[arg(long, default_value = "sqlite")]
    queue: String,
    /// Uploads and results: a folder, or s3://, gs://, az:// bucket prefix. Default:
    /// DATA_DIR/blobs.
    #[arg(long)]
    results: Option<String>,
    /// SMTP relay for result emails, smtp://HOST:PORT (with --mail-from).
    #[arg(long)]
    smtp: Option<String>,
    #[arg(long)]
    mail_from: Option<String>,
    /// The service's public origin, for the links in emails. Default: http://LISTEN.
    #[arg(long)]
    public_url: Option<String>,
    /// Allow a front end served from ORIGIN to call the API.
    #[arg(long)]
    cors_origin: Option<String>,
    /// cpu, cuda[:N] or wgpu[:N] (`ugatit-infer devices` lists them; default: a GPU the build
    /// can use, else the CPU).
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Largest request body, in bytes or with a unit (10MB, 512KiB).
    #[arg(long, default_value = "10MB", value_parser = parse_bytes)]
    max_upload: usize,
    /// Largest image in pixels, checked before decoding.
    #[arg(long, default_value_t = ugatit_io::image_file::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Keep uploads after their result is stored (deleted by default).
    #[arg(long)]
    keep_inputs: bool,
    /// Take the client address for --rate-limit from the last X-Forwarded-For entry.
    #[arg(long)]
    trust_proxy: bool,
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    s.parse()
}

/// `10MB`, `512KiB`, `1048576`.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("bad size {s:?}: use bytes or a unit such as 10MB"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "bad size unit {other:?}: use B, KB, MB, GB, KiB, MiB, GiB"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("--data-dir {}", cli.data_dir.display()))?;
    let secret_file = cli
        .secret_file
        .clone()
        .unwrap_or_else(|| cli.data_dir.join("secret"));
    let signer = Arc::new(Signer::load_or_create(&secret_file)?);
    let jobs = open_jobs(&cli.queue, &cli.data_dir).await?;
    let blobs = open_blobs(cli.results.as_deref(), &cli.data_dir)?;
    let notifier = open_mailer(cli.smtp.as_deref(), cli.mail_from.as_deref())?;
    let metrics = Arc::new(Metrics::default());
    let cors_origin = cli
        .cors_origin
        .as_deref()
        .map(|o| {
            o.parse()
                .with_context(|| format!("--cors-origin {o:?} is not a header value"))
        })
        .transpose()?;

    let worker = match cli.role {
        Role::Api => None,
        Role::All | Role::Worker => {
            let Some(path) = cli.model.clone() else {
                bail!("--model is required unless --role api");
            };
            let device = DeviceChoice::resolve(cli.device)?;
            let spec = ModelSpec {
                path,
                direction: cli.direction,
                size: cli.size,
                device,
            };
            let model = tokio::task::spawn_blocking(move || Model::start(spec)).await??;
            let max_batch = cli.max_batch.unwrap_or(if device.is_gpu() { 8 } else { 1 });
            if max_batch == 0 {
                bail!("--max-batch must be at least 1");
            }
            eprintln!(
                "model loaded on {device}: {} at {s}x{s}, up to {max_batch} a batch",
                cli.direction.as_str(),
                s = model.size()
            );
            let name = format!(
                "{}-{}",
                std::process::id(),
                ugatit_serve::jobs::JobId::random()?
            );
            Some(Worker {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                model,
                signer: signer.clone(),
                metrics: metrics.clone(),
                notifier,
                config: WorkerConfig {
                    name,
                    max_batch,
                    lease: cli.lease,
                    poll: Duration::from_millis(500),
                    keep_inputs: cli.keep_inputs,
                    max_pixels: cli.max_pixels,
                    public_url: cli.public_url.clone(),
                },
            })
        }
    };
    let api = Arc::new(Api::new(
        jobs,
        blobs,
        signer,
        metrics,
        ApiConfig {
            max_upload: cli.max_upload,
            max_pixels: cli.max_pixels,
            queue_size: cli.queue_size,
            link_ttl: cli.link_ttl,
            direction: cli.direction,
            rate_limit: cli.rate_limit,
            trust_proxy: cli.trust_proxy,
        },
    ));
    Server {
        listen: cli.listen,
        api,
        serve_api: cli.role != Role::Worker,
        worker,
        cors_origin,
    }
    .run()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_bytes("1234"), Ok(1234));
        assert!(parse_bytes("10XB").is_err());
        assert!(parse_bytes("MB").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
