//! `ugatit-train`: train U-GAT-IT and manage its run folders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand};
use ugatit_model::checkpoint::RunDir;
use ugatit_model::export::{export_generator, ExportFormat, StoreDtype};
use ugatit_model::{DeviceChoice, Direction};
use ugatit_train::bench::{self, Work};
use ugatit_train::config::Config;
use ugatit_train::run::{self, Start};

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
        /// Defaults to checkpoints/<config file stem>.
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Start from these weights (our checkpoint or run folder, an official .pt), with fresh
        /// optimisers, at step 1.
        #[arg(long)]
        init: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Continue a run from its newest complete checkpoint, with its saved config.
    Resume {
        #[arg(long)]
        run_dir: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Write one generator of a run for serving: safetensors (official key names) or ONNX.
    Export {
        #[arg(long)]
        run_dir: PathBuf,
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
    },
    /// Print what a run folder, checkpoint or weights file holds.
    Inspect { path: PathBuf },
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
struct Common {
    /// Override a config value, e.g. --set train.iterations=2000 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    sets: Vec<String>,
    /// Stop cleanly after this step, with a checkpoint (not saved in the config).
    #[arg(long)]
    stop_after: Option<u64>,
    /// cpu, cuda or cuda:N. Defaults to the first GPU when built with CUDA, else the CPU.
    #[arg(long)]
    device: Option<DeviceChoice>,
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
            let mut cfg = Config::load(&config, &common.sets)?;
            let run_dir = run_dir.unwrap_or_else(|| default_run_dir(&config));
            run::prepare_new(&run_dir, &mut cfg)?;
            on_device(&common, &run_dir, &cfg, Start::New { init })
        }
        Command::Resume { run_dir, common } => {
            let cfg = run::resumed_config(&run_dir, &common.sets)?;
            on_device(&common, &run_dir, &cfg, Start::Resume)
        }
        Command::Export {
            run_dir,
            step,
            direction,
            output,
            format,
            dtype,
        } => export(&run_dir, step, direction, &output, format, dtype),
        Command::Inspect { path } => inspect::run(&path),
        Command::Bench {
            what,
            config,
            sets,
            repeat,
            device,
        } => {
            let cfg = Config::load(&config, &sets)?;
            let device = device.unwrap_or(DeviceChoice::best(cfg!(feature = "cuda")));
            let report = match device {
                DeviceChoice::Cpu => bench::run::<Autodiff<ugatit_model::Cpu>>(
                    &cfg,
                    what,
                    repeat.max(1),
                    &Default::default(),
                    "cpu",
                ),
                #[cfg(feature = "cuda")]
                DeviceChoice::Cuda(i) => bench::run::<Autodiff<burn_cuda::Cuda>>(
                    &cfg,
                    what,
                    repeat.max(1),
                    &burn_cuda::CudaDevice::new(i),
                    &device.to_string(),
                ),
                #[cfg(not(feature = "cuda"))]
                DeviceChoice::Cuda(_) => {
                    bail!("--device {device}: this ugatit-train was built without CUDA support")
                }
            };
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
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

fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().to_string());
    PathBuf::from("checkpoints").join(stem)
}

fn on_device(common: &Common, run_dir: &Path, cfg: &Config, start: Start) -> Result<()> {
    run::stop_on_signals();
    let device = common
        .device
        .unwrap_or(DeviceChoice::best(cfg!(feature = "cuda")));
    match device {
        DeviceChoice::Cpu => {
            train::<Autodiff<ugatit_model::Cpu>>(common, run_dir, cfg, start, &Default::default())
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => train::<Autodiff<burn_cuda::Cuda>>(
            common,
            run_dir,
            cfg,
            start,
            &burn_cuda::CudaDevice::new(i),
        ),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => bail!(
            "--device {device}: this ugatit-train was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)"
        ),
    }
}

fn train<B: AutodiffBackend>(
    common: &Common,
    run_dir: &Path,
    cfg: &Config,
    start: Start,
    device: &B::Device,
) -> Result<()> {
    let done = run::run::<B>(run_dir, cfg, start, common.stop_after, device)?;
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
    let run = RunDir::new(run_dir);
    let checkpoint = match step {
        Some(s) => run
            .checkpoints()?
            .into_iter()
            .find(|c| c.step == s)
            .with_context(|| format!("{}: no checkpoint of step {s}", run_dir.display()))?,
        None => {
            let (found, bad) = run.latest_verified()?;
            for e in bad {
                eprintln!("warning: skipping a damaged checkpoint: {e}");
            }
            found.with_context(|| format!("{}: no complete checkpoint", run_dir.display()))?
        }
    };
    checkpoint.verify()?;
    let done = export_generator(&checkpoint.file(), direction, output, format, dtype)?;
    println!(
        "wrote the {direction} generator of step {} to {} ({:.1} MiB)",
        checkpoint.step,
        output.display(),
        done.bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
