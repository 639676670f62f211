//! Writing a checkpoint: staged, committed atomically, then retention applied and the bucket
//! mirror told (it uploads in the background; a step never waits for it).

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use ugatit_store::checkpoint::RunDir;

use crate::config::Config;
use crate::mirror::Mirror;
use crate::step::TrainState;
use crate::trainer_state::{self, Progress};

/// Saves `state` with `progress` as the checkpoint of `progress.step`.
pub(super) fn save<B: AutodiffBackend>(
    run: &RunDir,
    state: &TrainState<B>,
    cfg: &Config,
    progress: Progress,
    mirror: Option<&Mirror>,
) -> Result<()> {
    let staged = run.begin_checkpoint(progress.step)?;
    trainer_state::save(&staged, state, &cfg.model, &progress)?;
    let committed = staged.commit()?;
    run.prune(cfg.checkpoint.keep, cfg.checkpoint.milestone_every)?;
    if let Some(m) = mirror {
        m.checkpoint(committed);
    }
    Ok(())
}
