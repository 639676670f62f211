//! `ugatit-infer`: translate images with a U-GAT-IT generator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use clap::{Parser, Subcommand};
use ugatit_infer::Translator;
use ugatit_model::export::{export_generator, ExportFormat, StoreDtype};
use ugatit_model::{DeviceChoice, Direction};

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
    /// Translate image files; writes OUTPUT/<input file stem>.png for each.
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
    /// Side of the square the images are resized to. Defaults to the model's img_size (256 for
    /// a light model from an official .pt); a full model accepts only its own.
    #[arg(long)]
    size: Option<usize>,
    /// Folder for the results (created if needed).
    #[arg(long, short)]
    output: PathBuf,
    /// cpu, cuda or cuda:N. Defaults to the first GPU when built with CUDA, else the CPU.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Translate(args) => translate_on_device(args),
        Command::Export {
            model,
            direction,
            output,
            format,
            dtype,
        } => export_generator(&model, direction, &output, format, dtype)
            .map(|done| {
                println!(
                    "wrote the {direction} generator to {} ({:.1} MiB)",
                    output.display(),
                    done.bytes as f64 / (1 << 20) as f64
                );
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn translate_on_device(args: TranslateArgs) -> Result<ExitCode> {
    let device = args
        .device
        .unwrap_or(DeviceChoice::best(cfg!(feature = "cuda")));
    match device {
        DeviceChoice::Cpu => translate::<ugatit_model::Cpu>(&args, &Default::default()),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => {
            translate::<burn_cuda::Cuda>(&args, &burn_cuda::CudaDevice::new(i))
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => bail!(
            "--device {device}: this ugatit-infer was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)"
        ),
    }
}

/// Translates every input, reporting a bad one on its own line and going on with the rest;
/// exits with 2 if any failed.
fn translate<B: Backend>(args: &TranslateArgs, device: &B::Device) -> Result<ExitCode> {
    let outputs = output_paths(&args.inputs, &args.output)?;
    let start = Instant::now();
    let translator = Translator::<B>::load(&args.model, args.direction, args.size, device)?;
    for e in translator.skipped_checkpoints() {
        eprintln!("warning: skipping a damaged checkpoint: {e}");
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut failed = 0;
    for (input, output) in &outputs {
        if let Err(e) = translate_one(&translator, input, output) {
            eprintln!("error: {}: {e:#}", input.display());
            failed += 1;
        }
    }
    println!(
        "translated {} of {} images ({}, {}x{}) into {} in {:.1}s",
        outputs.len() - failed,
        outputs.len(),
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

fn translate_one<B: Backend>(t: &Translator<B>, input: &Path, output: &Path) -> Result<()> {
    let image = image::ImageReader::open(input)?
        .with_guessed_format()?
        .decode()
        .context("not a readable PNG or JPEG image")?;
    t.translate(&image)
        .save(output)
        .with_context(|| format!("cannot write {}", output.display()))
}

/// `OUTPUT/<stem>.png` for each input; two inputs with one stem would overwrite each other.
fn output_paths(inputs: &[PathBuf], dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    let mut out = Vec::new();
    for input in inputs {
        let Some(stem) = input.file_stem() else {
            bail!("{}: not a file name", input.display());
        };
        let target = dir.join(stem).with_extension("png");
        if let Some(other) = seen.insert(target.clone(), input) {
            bail!(
                "{} and {} would both be written to {}",
                other.display(),
                input.display(),
                target.display()
            );
        }
        out.push((input.clone(), target));
    }
    Ok(out)
}
