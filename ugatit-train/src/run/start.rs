//! The state a run starts from: step 1 with random weights (from the seed) or `init`'s, with
//! fresh optimisers; or the newest checkpoint that verifies, whose optimiser states and data
//! positions make the resumed run bit-exact.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use ugatit_model::Ugatit;
use ugatit_store::checkpoint::{Checkpoint, RunDir};
use ugatit_store::{read_tensors, Contents};

use crate::config::Config;
use crate::step::TrainState;
use crate::trainer_state::{self, Progress, TRAINER_FORMAT_VERSION};

/// How a run begins.
pub enum Start {
    /// A new run: random weights, or `init`'s (any full-model format), fresh optimisers.
    New { init: Option<PathBuf> },
    /// Continue from the newest verified checkpoint; a run folder without one (a run stopped
    /// before its first checkpoint) starts at step 1 as `New` with `train.init` would.
    Resume,
}

/// The training state and progress `start` gives.
pub(super) fn state<B: AutodiffBackend>(
    run: &RunDir,
    cfg: &Config,
    start: Start,
    device: &B::Device,
) -> Result<(TrainState<B>, Progress)> {
    match start {
        Start::New { init } => fresh(init.as_deref(), cfg, device),
        Start::Resume => match newest_verified(run)? {
            Some(checkpoint) => {
                let loaded = trainer_state::load(&checkpoint, &cfg.model, &cfg.train, device)?;
                eprintln!(
                    "resuming {} from step {}",
                    run.root().display(),
                    loaded.1.step
                );
                Ok(loaded)
            }
            None => {
                eprintln!(
                    "{}: no complete checkpoint yet; starting the run at step 1",
                    run.root().display()
                );
                fresh(cfg.train.init.as_deref(), cfg, device)
            }
        },
    }
}

/// Step 0 of a run: `init`'s weights or random ones from the seed, fresh optimisers.
fn fresh<B: AutodiffBackend>(
    init: Option<&Path>,
    cfg: &Config,
    device: &B::Device,
) -> Result<(TrainState<B>, Progress)> {
    let model = match init {
        Some(path) => init_from(path, cfg, device)?,
        None => Ugatit::init(&cfg.model, cfg.train.seed, device),
    };
    let progress = Progress {
        format_version: TRAINER_FORMAT_VERSION,
        step: 0,
        data_position: [0, 0],
        skipped_images: 0,
        skipped_files: Vec::new(),
        loss_scale: None,
    };
    Ok((TrainState::new(model, &cfg.train), progress))
}

/// The newest checkpoint that verifies; damaged newer ones are set aside by the store and
/// reported here.
fn newest_verified(run: &RunDir) -> Result<Option<Checkpoint>> {
    let (found, damaged) = run.latest_verified_setting_aside()?;
    for d in damaged {
        eprintln!(
            "warning: skipping a damaged checkpoint (moved to {}): {}",
            d.moved_to.display(),
            d.error
        );
    }
    Ok(found)
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
