//! A training run: the loop around the official step (`UGATIT.train()`), which reads as the
//! algorithm does: a batch of each domain, one step at the scheduled learning rate, its losses
//! recorded, sample grids and checkpoints when due. The plumbing lives in the modules below:
//!
//! - [`folder`]: the run folder's resolved config, for a new run or a resume;
//! - [`start`]: the state step 1 or a resume starts from;
//! - [`feed`]: the two domains' data streams as batches of tensors;
//! - [`logbook`]: `metrics.jsonl`, TensorBoard scalars and the progress line;
//! - [`samples`]: the sample grids;
//! - [`eval`]: KID and FID on the test sets every `eval.every` steps;
//! - [`checkpoints`]: writing a checkpoint, then retention and the bucket mirror;
//! - [`signals`]: SIGINT and SIGTERM.

mod checkpoints;
mod eval;
mod feed;
mod folder;
mod logbook;
mod samples;
mod signals;
mod start;

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use ugatit_store::checkpoint::RunDir;

use crate::config::Config;
use crate::mirror::Mirror;
use crate::parallel::DataParallel;
use crate::schedule::lr_at;
use crate::step::{DeviceLosses, StepLosses};

pub use folder::{prepare_new, resumed_config, CONFIG_FILE};
pub use signals::stop_on_signals;
pub use start::Start;

use eval::Evaluation;
use feed::Feed;
use logbook::Logbook;
use samples::Samples;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub step: u64,
    pub iterations: u64,
    /// Stopped by SIGINT/SIGTERM before `iterations` or `--stop-after`.
    pub interrupted: bool,
}

/// Trains in `run_dir` until `iterations` (or `stop_after`) on `device`. `cfg.data.root` must be
/// a local folder here (the CLI fetches a bucket data set into its cache first: see
/// [`crate::data::source`]).
pub fn run<B: AutodiffBackend>(
    run_dir: &Path,
    cfg: &Config,
    start: Start,
    stop_after: Option<u64>,
    mirror: Option<&Mirror>,
    device: &B::Device,
) -> Result<Finished> {
    run_on_devices::<B>(
        run_dir,
        cfg,
        start,
        stop_after,
        mirror,
        std::slice::from_ref(device),
    )
}

/// [`run`] with the batch split across `devices` (data-parallel, see [`crate::parallel`]);
/// the first device holds the optimisers and gets the batches, samples and checkpoints.
pub fn run_on_devices<B: AutodiffBackend>(
    run_dir: &Path,
    cfg: &Config,
    start: Start,
    stop_after: Option<u64>,
    mirror: Option<&Mirror>,
    devices: &[B::Device],
) -> Result<Finished> {
    DataParallel::<B>::check_batch(devices.len(), cfg.train.batch_size)?;
    let device = &devices[0];
    let run = RunDir::new(run_dir);
    let root = cfg.data.root.clone().context("data.root is not set")?;
    let domains = feed::open_domains(&root)?;
    let (state, progress) = start::state::<B>(&run, cfg, start, device)?;
    let mut state = DataParallel::new(state, &cfg.model, devices);
    let end = stop_after.map_or(cfg.train.iterations, |k| k.min(cfg.train.iterations));

    let mut feed = Feed::start(domains, cfg, &progress);
    let samples = Samples::<B>::load(&root, cfg, device);
    let evaluation = Evaluation::<B>::load(&root, cfg, device)?;
    let mut log = Logbook::open(run_dir, cfg, progress.step, end, mirror)?;

    let mut pending = Vec::new();
    let mut step = progress.step;
    while step < end {
        step += 1;
        let lr = lr_at(step, &cfg.train);
        let (a, b) = feed.next_batches::<B>(device)?;
        pending.push((step, lr, state.step_on_device(a, b, lr)));
        log.tick();

        let interrupted = signals::stop_requested();
        let last = step == end || interrupted;
        let log_due = step.is_multiple_of(cfg.log.every) || last;
        let checkpoint_due = step.is_multiple_of(cfg.checkpoint.every) || last;
        // The losses stay on the device until something needs them, so a GPU never waits
        // for the host between steps; they are checked before anything is written of the
        // weights they came with.
        if log_due || checkpoint_due || samples.due(step) {
            for (done, lr, skipped, losses) in read_pending(&mut pending) {
                // A float16 step the loss scaler skipped may show infinite losses; its
                // weights did not change, so the run has not diverged.
                if !skipped {
                    stop_if_diverged(&run, done, &losses)?;
                }
                log.record(
                    done,
                    lr,
                    &losses,
                    feed.skipped_count(),
                    done == step && last,
                )?;
            }
        }
        if samples.due(step) {
            samples.write(&state.main, run_dir, step, log.events())?;
        }
        if evaluation.due(step) {
            log.record_extra(step, &evaluation.run(&state.main.gens)?)?;
        }
        if checkpoint_due {
            checkpoints::save(&run, &state.main, cfg, feed.progress(step), mirror)?;
        }
        if interrupted {
            log.abandon();
            eprintln!("stopped by a signal after step {step}; checkpoint written");
            return Ok(Finished {
                step,
                iterations: cfg.train.iterations,
                interrupted: true,
            });
        }
    }
    log.finish();
    Ok(Finished {
        step,
        iterations: cfg.train.iterations,
        interrupted: false,
    })
}

/// The losses of the steps run since the last read, read back in one transfer, in step order.
/// Each comes with whether the loss scaler skipped an update of that step.
fn read_pending<B: AutodiffBackend>(
    pending: &mut Vec<(u64, f64, DeviceLosses<B>)>,
) -> Vec<(u64, f64, bool, StepLosses)> {
    let (steps, losses): (Vec<_>, Vec<_>) = std::mem::take(pending)
        .into_iter()
        .map(|(step, lr, l)| ((step, lr, l.was_skipped()), l))
        .unzip();
    steps
        .into_iter()
        .zip(DeviceLosses::read_all(losses))
        .map(|((step, lr, skipped), l)| (step, lr, skipped, l))
        .collect()
}

/// A NaN or infinite loss stops the run, naming the step, the term and the last good
/// checkpoint (which is left in place).
fn stop_if_diverged(run: &RunDir, step: u64, losses: &StepLosses) -> Result<()> {
    let Some((name, value)) = losses.first_non_finite() else {
        return Ok(());
    };
    let last = run
        .latest()
        .ok()
        .flatten()
        .map_or("none".into(), |c| c.step.to_string());
    bail!("step {step}: {name} is {value}; stopping (the last good checkpoint is step {last})")
}
