//! What a checkpoint holds beyond the networks: both Adam states (`optim_g.bin`,
//! `optim_d.bin`, burn records keyed by the parameters' stable ids) and `trainer.json` (step,
//! data-order positions, skipped-file count). With these, a resumed run continues bit-exactly.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::ParamId;
use burn::optim::Optimizer;
use burn::prelude::Backend;
use burn::record::{BinFileRecorder, FullPrecisionSettings, PrecisionSettings, Record, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use ugatit_model::nets::Ugatit;
use ugatit_model::ModelConfig;
use ugatit_store::checkpoint::{Checkpoint, StagedCheckpoint};
use ugatit_store::{read_tensors, Contents};

use crate::config::TrainConfig;
use crate::loss_scale::LossScaler;
use crate::step::TrainState;

pub const TRAINER_FILE: &str = "trainer.json";
const OPTIM_G: &str = "optim_g";
const OPTIM_D: &str = "optim_d";
/// Version of `trainer.json` and the optimiser files; other versions are refused by name.
pub const TRAINER_FORMAT_VERSION: u32 = 1;

/// The trainer's own progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub format_version: u32,
    /// Steps completed.
    pub step: u64,
    /// Index of the next data candidate of domains A and B.
    pub data_position: [u64; 2],
    /// Undecodable files met so far.
    pub skipped_images: usize,
    /// Those files, so a resumed run reports and counts each only once.
    #[serde(default)]
    pub skipped_files: Vec<std::path::PathBuf>,
    /// The float16 loss scaler's state (absent in float32 and bfloat16 runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<LossScaler>,
}

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::new()
}

/// An optimiser record stored in parameter-id order. Burn's own `HashMap` record serialises in
/// random order, so the same state would give different bytes (and checksums) every time.
struct Sorted<M, T>(M, PhantomData<T>);

impl<M, T> Sorted<M, T> {
    fn new(map: M) -> Self {
        Self(map, PhantomData)
    }
}

impl<B, M, T> Record<B> for Sorted<M, T>
where
    B: Backend,
    T: Record<B>,
    M: IntoIterator<Item = (ParamId, T)> + FromIterator<(ParamId, T)> + Send,
{
    type Item<S: PrecisionSettings> = BTreeMap<u64, T::Item<S>>;

    fn into_item<S: PrecisionSettings>(self) -> Self::Item<S> {
        self.0
            .into_iter()
            .map(|(id, r)| (id.val(), r.into_item()))
            .collect()
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, device: &B::Device) -> Self {
        Sorted::new(
            item.into_iter()
                .map(|(id, i)| (ParamId::from(id), T::from_item(i, device)))
                .collect(),
        )
    }
}

/// Writes networks, optimisers and progress into a staged checkpoint.
pub fn save<B: AutodiffBackend>(
    staged: &StagedCheckpoint,
    state: &TrainState<B>,
    model: &ModelConfig,
    progress: &Progress,
) -> Result<()> {
    staged.write_nets(&state.model(), model)?;
    let dir = staged.dir();
    recorder()
        .record(Sorted::new(state.optim_g.to_record()), dir.join(OPTIM_G))
        .context("cannot write the generators' optimiser state")?;
    recorder()
        .record(Sorted::new(state.optim_d.to_record()), dir.join(OPTIM_D))
        .context("cannot write the discriminators' optimiser state")?;
    let progress = Progress {
        loss_scale: state.scaler,
        ..progress.clone()
    };
    std::fs::write(
        dir.join(TRAINER_FILE),
        serde_json::to_string_pretty(&progress)?,
    )
    .with_context(|| format!("cannot write {}", dir.join(TRAINER_FILE).display()))?;
    Ok(())
}

/// Loads a verified checkpoint into a training state for `model` and `train`.
pub fn load<B: AutodiffBackend>(
    checkpoint: &Checkpoint,
    model: &ModelConfig,
    train: &TrainConfig,
    device: &B::Device,
) -> Result<(TrainState<B>, Progress)> {
    let dir = &checkpoint.dir;
    let progress = read_progress(dir)?;
    let tensors = read_tensors(&checkpoint.file())?;
    let Contents::Model(sd) = &tensors.contents else {
        bail!("{}: holds no full model", checkpoint.file().display());
    };
    let nets = Ugatit::<B>::from_state_dict(model, sd, device).with_context(|| {
        format!(
            "{}: does not fit the run's [model]",
            checkpoint.file().display()
        )
    })?;
    let mut state = TrainState::new(nets, train);
    let Sorted(g, _) = recorder()
        .load(dir.join(OPTIM_G), device)
        .with_context(|| format!("{}: cannot read {OPTIM_G}.bin", dir.display()))?;
    let Sorted(d, _) = recorder()
        .load(dir.join(OPTIM_D), device)
        .with_context(|| format!("{}: cannot read {OPTIM_D}.bin", dir.display()))?;
    state.optim_g = state.optim_g.load_record(g);
    state.optim_d = state.optim_d.load_record(d);
    // A run resumed in float16 keeps its scale; one switched to float16 starts at torch's.
    if state.scaler.is_some() {
        state.scaler = progress.loss_scale.or(state.scaler);
    }
    Ok((state, progress))
}

fn read_progress(dir: &Path) -> Result<Progress> {
    let path = dir.join(TRAINER_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a training checkpoint", dir.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: unreadable", path.display()))?;
    let version = value["format_version"].as_u64().unwrap_or(0);
    if version != u64::from(TRAINER_FORMAT_VERSION) {
        bail!(
            "{}: trainer state format version {version}; this ugatit-train reads version {TRAINER_FORMAT_VERSION}",
            path.display()
        );
    }
    serde_json::from_value(value).with_context(|| format!("{}: unreadable", path.display()))
}
