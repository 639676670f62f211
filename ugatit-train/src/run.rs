//! A training run: starting or resuming it in a run folder, the loop around the step, and
//! everything it records (checkpoints, metrics, TensorBoard, sample grids).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use indicatif::{ProgressBar, ProgressStyle};
use ugatit_io::image_file::{list_images, read_rgb, DEFAULT_MAX_PIXELS};
use ugatit_model::Ugatit;
use ugatit_store::checkpoint::RunDir;
use ugatit_store::{read_tensors, Contents};

use crate::config::Config;
use crate::data::{push_planar, transform, Domain, Stream, StreamSettings};
use crate::log::{EventWriter, MetricsFile};
use crate::sample::grid;
use crate::schedule::lr_at;
use crate::step::{TrainState, LOSS_NAMES};
use crate::trainer_state::{self, Progress, TRAINER_FORMAT_VERSION};

/// The resolved config a run folder keeps.
pub const CONFIG_FILE: &str = "config.toml";
/// Images a sample grid shows per set.
const SAMPLE_COUNT: usize = 5;
/// Candidates decoded ahead of use, per domain.
const PREFETCH: usize = 8;

/// How a run begins.
pub enum Start {
    /// A new run: random weights, or `init`'s (any full-model format), fresh optimisers.
    New { init: Option<PathBuf> },
    /// Continue from the newest verified checkpoint.
    Resume,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub step: u64,
    pub iterations: u64,
    /// Stopped by SIGINT/SIGTERM before `iterations` or `--stop-after`.
    pub interrupted: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT and SIGTERM finish the current step, checkpoint and exit (preemptible
/// machines send SIGTERM).
pub fn stop_on_signals() {
    // A second installation (several runs in one process) keeps the first handler. A second
    // signal ends the process at once, for a run stuck in a step or an upload.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

/// Prepares a new run folder: refuses one with checkpoints, writes the resolved config.
pub fn prepare_new(run_dir: &Path, cfg: &mut Config) -> Result<()> {
    let run = RunDir::new(run_dir);
    if !run.checkpoints().unwrap_or_default().is_empty() {
        bail!(
            "{} already holds checkpoints: use `ugatit-train resume --run-dir {}`",
            run_dir.display(),
            run_dir.display()
        );
    }
    let root = cfg
        .data
        .root
        .clone()
        .context("data.root is not set: name the folder holding trainA and trainB")?;
    if cfg.data.toy_if_missing && !root.exists() {
        let n = crate::toy_data::write(&root, cfg.model.img_size as u32, cfg.train.seed)?;
        eprintln!(
            "wrote the toy data set ({n} images) into {}",
            root.display()
        );
    }
    cfg.data.root = Some(
        std::fs::canonicalize(&root).with_context(|| format!("data.root {}", root.display()))?,
    );
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    write_config(run_dir, cfg)
}

/// Reads a run folder's config with `sets` applied; the model cannot change on resume.
pub fn resumed_config(run_dir: &Path, sets: &[String]) -> Result<Config> {
    let path = run_dir.join(CONFIG_FILE);
    if !path.is_file() {
        bail!("{}: not a run folder (no {CONFIG_FILE})", run_dir.display());
    }
    let saved = Config::load(&path, &[])?;
    let cfg = Config::load(&path, sets)?;
    if cfg.model != saved.model {
        bail!("--set cannot change [model] on resume: the checkpoints hold that architecture");
    }
    write_config(run_dir, &cfg)?;
    Ok(cfg)
}

fn write_config(run_dir: &Path, cfg: &Config) -> Result<()> {
    let path = run_dir.join(CONFIG_FILE);
    ugatit_store::atomic::write_atomic(&path, cfg.to_toml().as_bytes())?;
    Ok(())
}

/// Trains in `run_dir` until `iterations` (or `stop_after`) on `device`.
pub fn run<B: AutodiffBackend>(
    run_dir: &Path,
    cfg: &Config,
    start: Start,
    stop_after: Option<u64>,
    mirror: Option<&crate::mirror::Mirror>,
    device: &B::Device,
) -> Result<Finished> {
    let run = RunDir::new(run_dir);
    let root = cfg.data.root.clone().context("data.root is not set")?;
    let (domain_a, domain_b) = (
        Domain::open(&root.join("trainA"))?,
        Domain::open(&root.join("trainB"))?,
    );

    let (mut state, progress) = match start {
        Start::New { init } => {
            let model = match init {
                Some(path) => init_from(&path, cfg, device)?,
                None => Ugatit::init(&cfg.model, cfg.train.seed, device),
            };
            let progress = Progress {
                format_version: TRAINER_FORMAT_VERSION,
                step: 0,
                data_position: [0, 0],
                skipped_images: 0,
                skipped_files: Vec::new(),
            };
            (TrainState::new(model, &cfg.train), progress)
        }
        Start::Resume => {
            let checkpoint = newest_verified(&run)?.with_context(|| {
                format!(
                    "{}: no complete checkpoint to resume from",
                    run_dir.display()
                )
            })?;
            let loaded = trainer_state::load(&checkpoint, &cfg.model, &cfg.train, device)?;
            eprintln!("resuming {} from step {}", run_dir.display(), loaded.1.step);
            loaded
        }
    };
    let first = progress.step + 1;
    let end = stop_after.map_or(cfg.train.iterations, |k| k.min(cfg.train.iterations));

    let size = cfg.model.img_size as u32;
    let seed = cfg.train.seed;
    let (workers, augment) = (cfg.data.workers, cfg.train.augment);
    let settings = |domain_seed: u64| StreamSettings {
        seed: seed ^ domain_seed,
        size,
        augment,
        workers,
        prefetch: PREFETCH,
    };
    // Files already known bad are not reported or counted again.
    let known_bad = |domain: &Domain| -> BTreeSet<PathBuf> {
        progress
            .skipped_files
            .iter()
            .filter(|f| f.starts_with(&domain.dir))
            .cloned()
            .collect()
    };
    let (bad_a, bad_b) = (known_bad(&domain_a), known_bad(&domain_b));
    let mut stream_a = Stream::start(domain_a, &settings(0xa), progress.data_position[0], bad_a);
    let mut stream_b = Stream::start(domain_b, &settings(0xb), progress.data_position[1], bad_b);
    let mut warn = |path: &Path, reason: &str| {
        eprintln!("warning: {}: skipped ({reason})", path.display());
    };

    let mut metrics = MetricsFile::open(&run_dir.join("metrics.jsonl"), progress.step)?;
    let mut events = if cfg.log.tensorboard {
        Some(EventWriter::create(&run_dir.join("tb"), mirror.map(|m| m.event_rolls()))?)
    } else {
        None
    };
    let samples = SampleSet::load(&root, size, device);
    let bar = progress_bar(first, end);
    let batch = cfg.train.batch_size;
    let to_tensor = |v: Vec<f32>| {
        Tensor::<B, 4>::from_data(
            TensorData::new(v, [batch, 3, size as usize, size as usize]),
            device,
        )
    };

    let mut step = progress.step;
    let mut window = (Instant::now(), 0u32);
    while step < end {
        step += 1;
        let lr = lr_at(step, &cfg.train);
        let a = to_tensor(stream_a.next_batch(batch, &mut warn)?);
        let b = to_tensor(stream_b.next_batch(batch, &mut warn)?);
        let losses = state.step(a, b, lr);
        if let Some((name, value)) = losses.first_non_finite() {
            let last = run
                .latest()
                .ok()
                .flatten()
                .map_or("none".into(), |c| c.step.to_string());
            bail!("step {step}: {name} is {value}; stopping (the last good checkpoint is step {last})");
        }
        let interrupted = STOP.load(Ordering::SeqCst);
        window.1 += 1;
        if step % cfg.log.every == 0 || step == end || interrupted {
            let secs = window.0.elapsed().as_secs_f64() / f64::from(window.1);
            window = (Instant::now(), 0);
            let now_skipped = stream_a.skipped().len() + stream_b.skipped().len();
            let mut values: Vec<(&str, f64)> = vec![("lr", lr)];
            values.extend(
                LOSS_NAMES
                    .iter()
                    .zip(&losses.0)
                    .map(|(n, v)| (*n, f64::from(*v))),
            );
            values.push(("sec_per_step", secs));
            values.push(("skipped_images", now_skipped as f64));
            metrics.write(step, &values)?;
            if let Some(ev) = events.as_mut() {
                for (name, v) in &values {
                    ev.scalar(name, step, *v as f32)?;
                }
                ev.flush()?;
            }
            let line = format!(
                "step {step}/{end}  d_loss {:.4}  g_loss {:.4}  lr {lr:.3e}  {secs:.2} s/step",
                losses.get("d_loss"),
                losses.get("g_loss")
            );
            match &bar {
                Some(bar) => bar.set_message(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        if cfg.log.sample_every > 0 && step % cfg.log.sample_every == 0 {
            samples.write(&state, run_dir, step, events.as_mut())?;
        }
        if step % cfg.checkpoint.every == 0 || step == end || interrupted {
            let skipped_files: Vec<PathBuf> = stream_a
                .skipped()
                .iter()
                .chain(stream_b.skipped())
                .cloned()
                .collect();
            let progress = Progress {
                format_version: TRAINER_FORMAT_VERSION,
                step,
                data_position: [stream_a.position(), stream_b.position()],
                skipped_images: skipped_files.len(),
                skipped_files,
            };
            let staged = run.begin_checkpoint(step)?;
            trainer_state::save(&staged, &state, &cfg.model, &progress)?;
            let committed = staged.commit()?;
            run.prune(cfg.checkpoint.keep, cfg.checkpoint.milestone_every)?;
            if let Some(m) = mirror {
                m.checkpoint(committed);
            }
        }
        if interrupted {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            eprintln!("stopped by a signal after step {step}; checkpoint written");
            return Ok(Finished {
                step,
                iterations: cfg.train.iterations,
                interrupted: true,
            });
        }
    }
    if let Some(bar) = &bar {
        bar.finish();
    }
    Ok(Finished {
        step,
        iterations: cfg.train.iterations,
        interrupted: false,
    })
}

/// The newest checkpoint that verifies. Damaged newer ones are reported and renamed aside
/// (`.step-N.damaged`), so retention never counts them among the checkpoints to keep.
fn newest_verified(run: &RunDir) -> Result<Option<ugatit_store::checkpoint::Checkpoint>> {
    for c in run.checkpoints()?.into_iter().rev() {
        match c.verify() {
            Ok(()) => return Ok(Some(c)),
            Err(e) => {
                let aside = c.dir.with_file_name(format!(
                    ".{}.damaged",
                    c.dir
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default()
                ));
                eprintln!(
                    "warning: skipping a damaged checkpoint (moved to {}): {e}",
                    aside.display()
                );
                let _ = std::fs::remove_dir_all(&aside);
                std::fs::rename(&c.dir, &aside)
                    .with_context(|| format!("cannot move {} aside", c.dir.display()))?;
            }
        }
    }
    Ok(None)
}

/// The six networks from `path` (any full-model format), which must fit `cfg.model`.
fn init_from<B: Backend>(path: &Path, cfg: &Config, device: &B::Device) -> Result<Ugatit<B>> {
    let t = read_tensors(path)?;
    let Contents::Model(sd) = &t.contents else {
        bail!(
            "--init {}: holds a single generator; training needs all six networks",
            path.display()
        );
    };
    Ugatit::from_state_dict(&cfg.model, sd, device).with_context(|| {
        format!(
            "--init {}: the weights do not fit the config's [model]",
            path.display()
        )
    })
}

fn progress_bar(first: u64, end: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || first > end {
        return None;
    }
    let bar = ProgressBar::new(end).with_position(first - 1);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// The fixed images sample grids show: the first few of each folder, in sorted order, resized
/// without augmentation (drawn apart from the training stream, so sampling never changes it).
struct SampleSet<B: Backend> {
    sets: Vec<(&'static str, Tensor<B, 4>, Tensor<B, 4>)>,
}

impl<B: AutodiffBackend> SampleSet<B> {
    fn load(root: &Path, size: u32, device: &B::Device) -> Self {
        let first = |folder: &str| -> Option<Tensor<B, 4>> {
            let files = list_images(&root.join(folder)).ok()?;
            let mut v = Vec::new();
            let mut n = 0;
            for f in files {
                if n == SAMPLE_COUNT {
                    break;
                }
                if let Ok(img) = read_rgb(&f, DEFAULT_MAX_PIXELS) {
                    let img = transform(&img, size, false, &mut ugatit_model::init::SplitMix64(0));
                    push_planar(&img, &mut v);
                    n += 1;
                }
            }
            (n > 0).then(|| {
                Tensor::from_data(
                    TensorData::new(v, [n, 3, size as usize, size as usize]),
                    device,
                )
            })
        };
        let mut sets = Vec::new();
        for (name, a, b) in [("train", "trainA", "trainB"), ("test", "testA", "testB")] {
            if let (Some(a), Some(b)) = (first(a), first(b)) {
                sets.push((name, a, b));
            }
        }
        Self { sets }
    }

    /// Writes `samples/<set>_<a2b|b2a>_<step>.png` and their TensorBoard images.
    fn write(
        &self,
        state: &TrainState<B>,
        run_dir: &Path,
        step: u64,
        mut events: Option<&mut EventWriter>,
    ) -> Result<()> {
        let dir = run_dir.join("samples");
        std::fs::create_dir_all(&dir)?;
        let gens = state.gens.valid();
        for (name, a, b) in &self.sets {
            for (dir_name, fwd, bwd, real) in [
                ("a2b", &gens.a2b, &gens.b2a, a.clone().inner()),
                ("b2a", &gens.b2a, &gens.a2b, b.clone().inner()),
            ] {
                let img = grid(fwd, bwd, real);
                let path = dir.join(format!("{name}_{dir_name}_{step:08}.png"));
                img.save(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if let Some(ev) = events.as_deref_mut() {
                    let mut png = Vec::new();
                    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
                    ev.image(
                        &format!("samples/{name}_{dir_name}"),
                        step,
                        &png,
                        img.height(),
                        img.width(),
                    )?;
                }
            }
        }
        if let Some(ev) = events {
            ev.flush()?;
        }
        Ok(())
    }
}
