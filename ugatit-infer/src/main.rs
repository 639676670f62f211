//! `ugatit-infer`: translate images with a U-GAT-IT generator, export generators, time them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::prelude::*;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ugatit_infer::files::{translate_files, FileOptions, Summary};
use ugatit_infer::inputs::{plan, Format};
use ugatit_infer::{Crop, Options, Translator};
use ugatit_io::device::{run_on, DeviceWork};
use ugatit_io::timing::{peak_rss_mb, time_runs, warmup_runs};
use ugatit_io::DeviceChoice;
use ugatit_model::{Direction, Precision};
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};

/// Large tensors on transparent huge pages, freed ones reused (the `ugatit-alloc` crate).
#[global_allocator]
static ALLOC: ugatit_alloc::HugePageAlloc = ugatit_alloc::HugePageAlloc::new();

#[derive(Parser)]
#[command(
    name = "ugatit-infer",
    version,
    about = "Translate images with a U-GAT-IT generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate images: files, folders (recursively) or glob patterns.
    Translate(TranslateArgs),
    /// Write one generator of any model path for serving: safetensors or ONNX.
    Export {
        /// A run folder, checkpoint, generator file or official UGATIT-pytorch .pt.
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value = "a2b")]
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
    /// List the devices this build can use (`--device` values), their kind and backend.
    Devices,
    /// Images per second of a model on a device (median of repeated batches).
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value = "a2b")]
        direction: Direction,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        #[arg(long)]
        device: Option<DeviceChoice>,
        /// f32, bf16 or f16, as `translate --precision`.
        #[arg(long, default_value = "f32")]
        precision: Precision,
    },
}

#[derive(clap::Args)]
struct TranslateArgs {
    /// A run folder (its newest checkpoint), a checkpoint, a generator file, or an official
    /// UGATIT-pytorch .pt.
    #[arg(long)]
    model: PathBuf,
    /// a2b uses genA2B (selfie to anime in selfie2anime), b2a genB2A.
    #[arg(long, default_value = "a2b")]
    direction: Direction,
    /// Folder for the results (created if needed).
    #[arg(long, short)]
    output: PathBuf,
    /// X,Y,W,H in pixels of the original image, center (the central square) or auto (a square
    /// around the largest face). Without it the whole image is resized to a square.
    #[arg(long)]
    crop: Option<Crop>,
    /// With --crop auto: use the central square when no face is found (else an error).
    #[arg(long, value_parser = ["center"])]
    crop_fallback: Option<String>,
    /// Scale each result back to its crop's size.
    #[arg(long)]
    keep_size: bool,
    /// Also write the CAM heatmap (jet colours) as <name>_heatmap.<ext>.
    #[arg(long)]
    heatmap: bool,
    /// Side of the square images are resized to. Defaults to the model's img_size (256 for a
    /// light model from an official .pt); a full model accepts only its own.
    #[arg(long)]
    size: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, value_enum, default_value = "png")]
    format: Format,
    /// Replace existing results (inputs are never written over).
    #[arg(long)]
    overwrite: bool,
    /// Refuse images larger than this many pixels (before decoding them).
    #[arg(long, default_value_t = 50_000_000)]
    max_pixels: u64,
    /// cpu, cuda[:N] or wgpu[:N] (`devices` lists them). Defaults to a GPU the build can use,
    /// else the CPU.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// f32, bf16 or f16: the compute type of convolutions and linear layers (weights, norms
    /// and the rest stay float32). Half precision is for GPUs; results differ from f32 by a
    /// few grey levels.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Image files, folders or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Translate(args) => checked(args.device, args.precision)
            .and_then(|device| on_device(device, Work::Translate(&args))),
        Command::Devices => {
            print!(
                "{}",
                ugatit_io::device::devices_table(&ugatit_io::device::list_devices())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            model,
            direction,
            output,
            format,
            dtype,
        } => export_generator(&model, direction, &output, format, dtype)
            .map(|done| {
                for e in &done.skipped {
                    eprintln!("warning: skipping a damaged checkpoint: {e}");
                }
                println!("{}", done.summary(direction, &output));
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
        Command::Bench {
            model,
            direction,
            batch,
            size,
            repeat,
            device,
            precision,
        } => checked(device, precision).and_then(|device| {
            on_device(
                device,
                Work::Bench {
                    model: &model,
                    direction,
                    batch: batch.max(1),
                    size,
                    repeat: repeat.max(1),
                    device_name: device,
                    precision,
                },
            )
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What to do once the backend is chosen.
enum Work<'a> {
    Translate(&'a TranslateArgs),
    Bench {
        model: &'a Path,
        direction: Direction,
        batch: usize,
        size: Option<usize>,
        repeat: usize,
        device_name: DeviceChoice,
        precision: Precision,
    },
}

impl DeviceWork for Work<'_> {
    type Output = Result<ExitCode>;
    fn run<B: Backend>(self, device: &B::Device) -> Result<ExitCode> {
        match self {
            Work::Translate(args) => translate::<B>(args, device),
            Work::Bench {
                model,
                direction,
                batch,
                size,
                repeat,
                device_name,
                precision,
            } => bench::<B>(
                model,
                direction,
                (batch, size, repeat),
                precision,
                device_name,
                device,
            ),
        }
    }
}

/// The device to run on, refused before any work if it cannot compute in `precision`.
fn checked(device: Option<DeviceChoice>, precision: Precision) -> Result<DeviceChoice> {
    let device = DeviceChoice::resolve(device)?;
    device.check_precision(precision)?;
    Ok(device)
}

/// Runs `work` on the chosen device's backend.
fn on_device(device: DeviceChoice, work: Work) -> Result<ExitCode> {
    run_on(device, work)?
}

/// Translates every input, reporting each bad one on its own line and going on with the rest;
/// exits with 2 if any failed.
fn translate<B: Backend>(args: &TranslateArgs, device: &B::Device) -> Result<ExitCode> {
    let start = Instant::now();
    let jobs =
        plan(&args.inputs, &args.output, args.format, args.heatmap).map_err(anyhow::Error::msg)?;
    let translator = Translator::<B>::load(&args.model, args.direction, args.size, device)?
        .with_precision(args.precision);
    for e in translator.skipped_checkpoints() {
        eprintln!("warning: skipping a damaged checkpoint: {e}");
    }
    let crop = match (args.crop, args.crop_fallback.is_some()) {
        (Some(Crop::Auto { .. }), fallback) => Crop::Auto {
            fallback_center: fallback,
        },
        (_, true) => bail!("--crop-fallback needs --crop auto"),
        (c, false) => c.unwrap_or_default(),
    };
    let options = Options {
        crop,
        keep_size: args.keep_size,
        heatmap: args.heatmap,
    };
    let bar = (jobs.len() > 3 && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let files = FileOptions {
        batch: args.batch,
        overwrite: args.overwrite,
        max_pixels: args.max_pixels,
        image: options,
    };
    let Summary {
        done,
        failed,
        stretched,
    } = translate_files(
        &translator,
        &jobs,
        &files,
        |job, e| {
            let line = format!("error: {}: {e}", job.input.display());
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
        },
        |n| {
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if stretched > 0 {
        eprintln!(
            "note: {stretched} image(s) were not square and were stretched to {0}x{0}; \
             --crop center or --crop auto keeps proportions",
            translator.size()
        );
    }
    println!(
        "translated {done} of {} images ({}, {}x{}) into {}; {failed} failed; {:.1}s",
        jobs.len(),
        args.direction,
        translator.size(),
        translator.size(),
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// One `bench` result, printed as a JSON line.
#[derive(serde::Serialize)]
struct BenchReport {
    model: String,
    direction: String,
    device: String,
    precision: String,
    light: bool,
    size: usize,
    ch: usize,
    n_res: usize,
    batch: usize,
    median_s: f64,
    min_s: f64,
    images_per_s: f64,
    peak_rss_mb: f64,
}

/// Prints the median images per second of `repeat` batches after the warm-up batches.
fn bench<B: Backend>(
    model: &Path,
    direction: Direction,
    (batch, size, repeat): (usize, Option<usize>, usize),
    precision: Precision,
    device_name: DeviceChoice,
    device: &B::Device,
) -> Result<ExitCode> {
    let t = Translator::<B>::load(model, direction, size, device)?.with_precision(precision);
    let s = t.size();
    let x = Tensor::<B, 4>::random(
        [batch, 3, s, s],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        device,
    );
    // Reading the result back waits for the device.
    let timing = time_runs(warmup_runs(device_name), repeat, || {
        let _ = t.forward(x.clone()).image.into_data();
    });
    let c = t.config();
    let report = BenchReport {
        model: model.display().to_string(),
        direction: direction.to_string(),
        device: device_name.to_string(),
        precision: precision.to_string(),
        light: c.light,
        size: s,
        ch: c.ch,
        n_res: c.n_res,
        batch,
        median_s: timing.median_s,
        min_s: timing.min_s,
        images_per_s: batch as f64 / timing.median_s,
        peak_rss_mb: peak_rss_mb(),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
