//! `ugatit-train`: train U-GAT-IT and manage its run folders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use ugatit_io::device::{run_autodiff_on, run_on, AutodiffWork, DeviceWork};
use ugatit_io::image_file::DEFAULT_MAX_PIXELS;
use ugatit_io::DeviceChoice;
use ugatit_model::{Direction, Precision};
use ugatit_store::bucket::{cache_folder, is_url, RemoteRun};
use ugatit_store::checkpoint::RunDir;
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};
use ugatit_train::bench::{self, Work};
use ugatit_train::config::{absolute, Config};
use ugatit_train::data::check::{check, CheckSettings, DEFAULT_MIN_SIDE};
use ugatit_train::data::prepare::{
    prepare, PrepareSettings, TestSplit, DEFAULT_SIZE, DEFAULT_TEST_COUNT,
};
use ugatit_train::data::source;
use ugatit_train::eval::{self, EvalOptions, KidOptions};
use ugatit_train::mirror::Mirror;
use ugatit_train::run::{self, Start};

/// Large tensors on transparent huge pages, freed ones reused (the `ugatit-alloc` crate).
#[global_allocator]
static ALLOC: ugatit_alloc::HugePageAlloc = ugatit_alloc::HugePageAlloc::new();

mod inspect;

#[derive(Parser)]
#[command(
    name = "ugatit-train",
    version,
    about = "Train U-GAT-IT and manage its runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a run (a run folder that already has checkpoints is refused: use resume).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// A folder (default checkpoints/<config file stem>) or a bucket URL (s3://, gs://,
        /// az://, file://).
        #[arg(long)]
        run_dir: Option<String>,
        /// Start from these weights (our checkpoint, run folder or bucket URL, an official
        /// .pt), with fresh optimisers, at step 1.
        #[arg(long)]
        init: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Continue a run from its newest complete checkpoint, with its saved config (a run
    /// stopped before its first checkpoint starts again at step 1).
    Resume {
        /// A run folder or bucket URL.
        #[arg(long)]
        run_dir: String,
        /// Start the run from this config if the folder holds none yet, so that one command
        /// serves every boot of a preemptible machine; an existing run keeps its own config.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Write one generator of a run for serving: safetensors (official key names) or ONNX.
    Export {
        /// A run folder or bucket URL.
        #[arg(long)]
        run_dir: String,
        /// A checkpoint's step; defaults to the newest.
        #[arg(long)]
        step: Option<u64>,
        #[arg(long)]
        direction: Direction,
        #[arg(long, short)]
        output: PathBuf,
        /// safetensors or onnx.
        #[arg(long, default_value = "safetensors")]
        format: ExportFormat,
        /// f32, f16 or bf16 (f16 halves the file; loading computes in f32).
        #[arg(long, default_value = "f32")]
        dtype: StoreDtype,
        /// Where a bucket run is fetched to (default: $XDG_CACHE_HOME/ugatit or ~/.cache/ugatit).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Print what a run folder, checkpoint or weights file holds.
    Inspect { path: PathBuf },
    /// List the devices this build can use (`--device` values), their kind and backend.
    Devices,
    /// Measure a model on the test set as the paper does: KID x100 and FID of its translations
    /// against the other domain's test images (with --features), cycle and identity L1.
    Eval(EvalArgs),
    /// Time one generator forward or one training step (median of --repeat runs), as JSON.
    Bench {
        what: Work,
        /// A config; only [model] (and train.seed) matter, so a file with only [model] will do.
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long)]
        device: Option<DeviceChoice>,
        /// f32, bf16 or f16 (default: the config's train.precision).
        #[arg(long)]
        precision: Option<Precision>,
    },
    /// Check a data set before training on it, or make one from two folders of photos.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Write a procedural two-domain data set (photo-like scenes and cartoons).
    ToyData {
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, default_value_t = 64)]
        size: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Any model ugatit-infer reads: a run folder or bucket URL, a checkpoint, an official .pt,
    /// an exported generator (no cycle L1 then).
    #[arg(long)]
    model: String,
    /// a2b (testA translated by genA2B, scored against testB) or b2a.
    #[arg(long)]
    direction: Direction,
    /// The data set folder: its testA and testB are read.
    #[arg(long)]
    data: PathBuf,
    /// pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth); without it only
    /// the L1 losses are measured.
    #[arg(long)]
    features: Option<PathBuf>,
    /// KID subsets.
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// Images a KID subset takes from each set at most (fewer when a set is smaller).
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// Seeds the KID subsets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// At most this many test images of each domain (the first, sorted).
    #[arg(long)]
    limit: Option<usize>,
    /// Images a forward pass.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// cpu, cuda[:N] or wgpu[:N] (`devices` lists them). Defaults to a GPU the build can use,
    /// else the CPU.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Where a bucket model is fetched to (default: $XDG_CACHE_HOME/ugatit or ~/.cache/ugatit).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Each folder's image count, sizes and colour modes, unusable, tiny and nearly empty files,
    /// and duplicates (across train and test: a leak). Exit code 2 if trainA, trainB, testA or
    /// testB is missing, empty or has no usable image.
    Check {
        /// The folder holding trainA, trainB, testA and testB.
        #[arg(long)]
        root: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Report images with a side below this many pixels as tiny.
        #[arg(long, default_value_t = DEFAULT_MIN_SIDE)]
        min_side: u32,
        /// Images with more pixels are unusable (refused before decoding).
        #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
        max_pixels: u64,
    },
    /// Make trainA, trainB, testA and testB from two folders of photos: square crops (around
    /// the largest face with --face), resized as inference resizes, duplicates removed, a
    /// seeded train/test split. Unusable files are reported and skipped.
    Prepare {
        /// Photos of domain A (searched recursively).
        #[arg(long)]
        a: PathBuf,
        /// Photos of domain B.
        #[arg(long)]
        b: PathBuf,
        /// The data set folder to write (never inside an input).
        #[arg(long, short)]
        output: PathBuf,
        /// Side of the written squares.
        #[arg(long, default_value_t = DEFAULT_SIZE)]
        size: u32,
        /// Crop a square around the largest face, as `ugatit-infer translate --crop auto`;
        /// photos without a face are skipped.
        #[arg(long)]
        face: bool,
        /// Test images a domain (default 100).
        #[arg(long, conflicts_with = "test_fraction")]
        test_count: Option<usize>,
        /// Share of each domain's images for testing, instead of --test-count.
        #[arg(long)]
        test_fraction: Option<f64>,
        /// Seed of the train/test split.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Images with more pixels are skipped (refused before decoding).
        #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
        max_pixels: u64,
        /// Replace the output's trainA, trainB, testA and testB when they hold files.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Override a config value, e.g. --set train.iterations=2000 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// Stop cleanly after this step, with a checkpoint (not saved in the config).
    #[arg(long)]
    stop_after: Option<u64>,
    /// cpu, cuda[:N] or wgpu[:N] (`devices` lists them). Defaults to a GPU the build can use,
    /// else the CPU.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Data-parallel training over several GPUs, e.g. cuda:0,cuda:1: train.batch_size is split
    /// evenly across them; the first holds the optimisers.
    #[cfg(feature = "multi-gpu")]
    #[arg(long, conflicts_with = "device")]
    devices: Option<String>,
    /// Local folder for bucket runs (default $XDG_CACHE_HOME/ugatit or ~/.cache/ugatit).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Train {
            config,
            run_dir,
            init,
            common,
        } => {
            let run_dir = run_dir.unwrap_or_else(|| default_run_dir(&config).display().to_string());
            start_run(&config, &run_dir, init.as_deref(), &common)
        }
        Command::Resume {
            run_dir,
            config,
            common,
        } => {
            let (local, remote) = location(&run_dir, common.cache_dir.as_deref())?;
            let exists = match &remote {
                Some(r) => fetch_run(r, &local, config.is_some())?,
                None => local.join(run::CONFIG_FILE).is_file(),
            };
            match config {
                Some(config) if !exists => return start_run(&config, &run_dir, None, &common),
                Some(_) => eprintln!(
                    "{run_dir} exists: it continues with its own {} (--config only starts a new run; change a value with --set)",
                    run::CONFIG_FILE
                ),
                None => {}
            }
            let cfg = run::resumed_config(&local, &common.sets)?;
            on_device(&common, &local, remote, &cfg, Start::Resume)
        }
        Command::Export {
            run_dir,
            step,
            direction,
            output,
            format,
            dtype,
            cache_dir,
        } => {
            let cache_dir = cache_dir.as_deref();
            let run_dir = match (is_url(&run_dir), step) {
                // Any checkpoint the bucket holds, not only the one `latest` names.
                (true, Some(step)) => {
                    let local = cache_folder(&run_dir, cache_dir);
                    RemoteRun::open(&run_dir)?.download_step(&local, step)?;
                    local
                }
                _ => local_model(&run_dir, cache_dir)?,
            };
            export(&run_dir, step, direction, &output, format, dtype)
        }
        Command::Inspect { path } => inspect::run(&path),
        Command::Devices => {
            print!(
                "{}",
                ugatit_io::device::devices_table(&ugatit_io::device::list_devices())
            );
            Ok(())
        }
        Command::Eval(args) => evaluate(args),
        Command::Bench {
            what,
            config,
            sets,
            repeat,
            device,
            precision,
        } => {
            let mut cfg = Config::load(&config, &sets)?;
            cfg.train.precision = precision.unwrap_or(cfg.train.precision);
            let device = DeviceChoice::resolve(device)?;
            device.check_precision(cfg.train.precision)?;
            let report = run_autodiff_on(
                device,
                BenchWork {
                    cfg: &cfg,
                    what,
                    repeat: repeat.max(1),
                },
            )?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Data { command } => data(command),
        Command::ToyData { output, size, seed } => {
            let n = ugatit_train::toy_data::write(&output, size, seed)?;
            println!(
                "wrote {n} images of {size}x{size} into {}",
                output.display()
            );
            Ok(())
        }
    }
}

fn data(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Check {
            root,
            json,
            min_side,
            max_pixels,
        } => {
            let report = check(
                &root,
                &CheckSettings {
                    max_pixels,
                    min_side,
                },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.ok {
                // Exit code 2, unlike other failures (1): the check ran, the data set is unusable.
                std::io::Write::flush(&mut std::io::stdout())?;
                std::process::exit(2);
            }
            Ok(())
        }
        DataCommand::Prepare {
            a,
            b,
            output,
            size,
            face,
            test_count,
            test_fraction,
            seed,
            max_pixels,
            overwrite,
        } => {
            let test = match (test_fraction, test_count) {
                (Some(f), _) => TestSplit::Fraction(f),
                (None, n) => TestSplit::Count(n.unwrap_or(DEFAULT_TEST_COUNT)),
            };
            let settings = PrepareSettings {
                size,
                face,
                test,
                seed,
                max_pixels,
                overwrite,
            };
            let done = prepare(&a, &b, &output, &settings)?;
            for d in &done.domains {
                for (removed, kept) in &d.duplicates {
                    eprintln!(
                        "duplicate: {} (same as {})",
                        removed.display(),
                        kept.display()
                    );
                }
                for s in &d.skipped {
                    eprintln!("skipped: {}: {}", s.file.display(), s.reason);
                }
            }
            print!("{done}");
            Ok(())
        }
    }
}

fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().to_string());
    PathBuf::from("checkpoints").join(stem)
}

/// Starts a run in `run_dir` from `config` (and `init`'s weights, which the run's config then
/// records).
fn start_run(config: &Path, run_dir: &str, init: Option<&str>, common: &Common) -> Result<()> {
    let mut cfg = Config::load(config, &common.sets)?;
    if let Some(init) = init {
        cfg.train.init = Some(absolute(Path::new(init), Path::new(""))?);
    }
    let (local, remote) = location(run_dir, common.cache_dir.as_deref())?;
    if let Some(r) = &remote {
        if r.latest_step()?.is_some() {
            bail!("{run_dir} already holds checkpoints: use `ugatit-train resume --run-dir {run_dir}`");
        }
    }
    let init = cfg
        .train
        .init
        .as_deref()
        .map(|i| local_model(&i.to_string_lossy(), common.cache_dir.as_deref()))
        .transpose()?;
    run::prepare_new(&local, &mut cfg)?;
    on_device(common, &local, remote, &cfg, Start::New { init })
}

/// Brings a bucket run's config and newest complete checkpoint into `local`. A bucket holding
/// the config but no checkpoint yet (a run stopped before its first) gives the config alone;
/// one holding no run is an error unless `may_start` (then `false`).
fn fetch_run(remote: &RemoteRun, local: &Path, may_start: bool) -> Result<bool> {
    let url = remote.url();
    let missing = match remote.download_latest(local) {
        Ok(step) => {
            eprintln!("fetched step {step} of {url} into {}", local.display());
            return Ok(true);
        }
        Err(e) if remote.latest_step()?.is_some() => return Err(e.into()),
        Err(e) => e,
    };
    if let Some(config) = remote.get_bytes(run::CONFIG_FILE)? {
        std::fs::create_dir_all(local)
            .with_context(|| format!("cannot create {}", local.display()))?;
        ugatit_store::atomic::write_atomic(&local.join(run::CONFIG_FILE), &config)?;
        eprintln!("{url} holds its config but no complete checkpoint yet");
        return Ok(true);
    }
    if !may_start {
        return Err(missing.into());
    }
    // A missing bucket reads as "no run" too: listing tells them apart.
    remote.list("")?;
    Ok(false)
}

/// The local folder a run works in, and its bucket if `run_dir` is a URL.
fn location(run_dir: &str, cache_dir: Option<&Path>) -> Result<(PathBuf, Option<RemoteRun>)> {
    if is_url(run_dir) {
        let remote = RemoteRun::open(run_dir)?;
        Ok((cache_folder(run_dir, cache_dir), Some(remote)))
    } else {
        Ok((PathBuf::from(run_dir), None))
    }
}

/// A local path for a model argument: a bucket run is fetched into the cache first.
fn local_model(arg: &str, cache_dir: Option<&Path>) -> Result<PathBuf> {
    let (local, remote) = location(arg, cache_dir)?;
    if let Some(r) = remote {
        r.download_latest(&local)?;
    }
    Ok(local)
}

fn on_device(
    common: &Common,
    run_dir: &Path,
    remote: Option<RemoteRun>,
    cfg: &Config,
    start: Start,
) -> Result<()> {
    run::stop_on_signals();
    let mirror = remote.map(|r| {
        Mirror::start(
            r,
            run_dir.to_path_buf(),
            cfg.checkpoint.keep,
            cfg.checkpoint.milestone_every,
        )
    });
    if let Some(m) = &mirror {
        m.config();
    }
    let result = local_config(cfg, &start, run_dir, common.cache_dir.as_deref()).and_then(|cfg| {
        let work = TrainWork {
            common,
            run_dir,
            cfg: &cfg,
            start,
            mirror: mirror.as_ref(),
        };
        #[cfg(feature = "multi-gpu")]
        if let Some(list) = &common.devices {
            let devices = ugatit_io::device::resolve_all(list)?;
            for d in &devices {
                d.check_precision(cfg.train.precision)?;
            }
            return ugatit_io::device::run_autodiff_on_all(&devices, work)?;
        }
        let device = DeviceChoice::resolve(common.device)?;
        device.check_precision(cfg.train.precision)?;
        run_autodiff_on(device, work)
            .map_err(anyhow::Error::from)
            .and_then(|r| r)
    });
    // Even a failed run's checkpoints and logs reach the bucket.
    if let Some(m) = mirror {
        m.finish();
    }
    result
}

/// The config as the run reads it, every URL in it fetched into the cache: a bucket data set,
/// and the `train.init` weights of a resume that finds no checkpoint (so starts at step 1).
fn local_config(
    cfg: &Config,
    start: &Start,
    run_dir: &Path,
    cache_dir: Option<&Path>,
) -> Result<Config> {
    let mut local = cfg.clone();
    if let Some(root) = &cfg.data.root {
        local.data.root = Some(source::local_root(root, cache_dir)?);
    }
    let starts_over =
        matches!(start, Start::Resume) && RunDir::new(run_dir).latest_verified()?.0.is_none();
    if let (true, Some(init)) = (starts_over, &cfg.train.init) {
        local.train.init = Some(local_model(&init.to_string_lossy(), cache_dir)?);
    }
    Ok(local)
}

fn evaluate(args: EvalArgs) -> Result<()> {
    let options = EvalOptions {
        model: local_model(&args.model, args.cache_dir.as_deref())?,
        direction: args.direction,
        data: args.data,
        inception: args.features,
        kid: KidOptions {
            subsets: args.kid_subsets,
            max_subset_size: args.kid_subset_size,
            seed: args.seed,
        },
        limit: args.limit,
        batch: args.batch,
    };
    let device = DeviceChoice::resolve(args.device)?;
    let report = run_on(device, EvalWork(&options))??;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.summary());
    }
    Ok(())
}

/// `eval` once the backend is chosen.
struct EvalWork<'a>(&'a EvalOptions);

impl DeviceWork for EvalWork<'_> {
    type Output = Result<eval::Report, eval::EvalError>;
    fn run<B: Backend>(self, device: &B::Device) -> Self::Output {
        eval::evaluate::<B>(self.0, device)
    }
}

/// `bench` once the backend is chosen.
struct BenchWork<'a> {
    cfg: &'a Config,
    what: Work,
    repeat: usize,
}

impl AutodiffWork for BenchWork<'_> {
    type Output = bench::Report;
    fn run<B: AutodiffBackend>(self, device: &B::Device, name: DeviceChoice) -> bench::Report {
        bench::run::<B>(self.cfg, self.what, self.repeat, device, name)
    }
}

/// `train` and `resume` once the backend is chosen.
struct TrainWork<'a> {
    common: &'a Common,
    run_dir: &'a Path,
    cfg: &'a Config,
    start: Start,
    mirror: Option<&'a Mirror>,
}

impl AutodiffWork for TrainWork<'_> {
    type Output = Result<()>;
    fn run<B: AutodiffBackend>(self, device: &B::Device, _name: DeviceChoice) -> Result<()> {
        self.train::<B>(std::slice::from_ref(device))
    }
}

#[cfg(feature = "multi-gpu")]
impl ugatit_io::device::ParallelWork for TrainWork<'_> {
    type Output = Result<()>;
    fn run<B: AutodiffBackend>(self, devices: &[B::Device]) -> Result<()> {
        self.train::<B>(devices)
    }
}

impl TrainWork<'_> {
    /// Trains with the batch split across `devices` (one device: no split).
    fn train<B: AutodiffBackend>(self, devices: &[B::Device]) -> Result<()> {
        train::<B>(
            self.common,
            self.run_dir,
            self.cfg,
            self.start,
            self.mirror,
            devices,
        )
    }
}

fn train<B: AutodiffBackend>(
    common: &Common,
    run_dir: &Path,
    cfg: &Config,
    start: Start,
    mirror: Option<&Mirror>,
    devices: &[B::Device],
) -> Result<()> {
    let done = run::run_on_devices::<B>(run_dir, cfg, start, common.stop_after, mirror, devices)?;
    println!(
        "{} at step {} of {} in {}",
        if done.interrupted { "stopped" } else { "done" },
        done.step,
        done.iterations,
        run_dir.display()
    );
    Ok(())
}

fn export(
    run_dir: &Path,
    step: Option<u64>,
    direction: Direction,
    output: &Path,
    format: ExportFormat,
    dtype: StoreDtype,
) -> Result<()> {
    // Without --step, export_generator resolves the run's newest verified checkpoint itself.
    let source = match step {
        Some(s) => {
            let checkpoint = RunDir::new(run_dir)
                .checkpoints()?
                .into_iter()
                .find(|c| c.step == s)
                .with_context(|| format!("{}: no checkpoint of step {s}", run_dir.display()))?;
            checkpoint.verify()?;
            checkpoint.file()
        }
        None => run_dir.to_path_buf(),
    };
    let done = export_generator(&source, direction, output, format, dtype)?;
    for e in &done.skipped {
        eprintln!("warning: skipping a damaged checkpoint: {e}");
    }
    println!("{}", done.summary(direction, output));
    Ok(())
}
