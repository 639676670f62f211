//! The sections of the config other than `[model]` (the networks crate's), with the official
//! defaults. Which keys exist and what values each takes: [`super::keys`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ugatit_model::Precision;

/// `[train]`: the official hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub iterations: u64,
    pub batch_size: usize,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// L2 penalty added to the gradient inside Adam (torch's `weight_decay`, not AdamW).
    pub weight_decay: f64,
    /// Linear decay to 0 over the second half of the iterations.
    pub decay_lr: bool,
    pub adv_weight: f64,
    pub cycle_weight: f64,
    pub identity_weight: f64,
    pub cam_weight: f64,
    /// Seeds the initial weights, the data order and the augmentation.
    pub seed: u64,
    /// Horizontal flip, resize to img_size + 30 and random crop; off: resize only.
    pub augment: bool,
    /// Weights step 1 starts from (any full-model format, a run folder or a bucket URL; what
    /// `--init` sets); none: random weights from the seed. Kept in the run's config so that a
    /// run stopped before its first checkpoint restarts from the same weights.
    pub init: Option<PathBuf>,
    /// Compute type of every convolution and linear layer: f32, bf16 or f16 (weights, Adam
    /// state, norms and spectral norm stay float32; f16 scales the loss dynamically).
    #[serde(deserialize_with = "precision_key")]
    pub precision: Precision,
}

/// `train.precision`, refused with the key named (serde's own message would not name it).
fn precision_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|e: String| serde::de::Error::custom(format!("train.precision: {e}")))
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            iterations: 1_000_000,
            batch_size: 1,
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            weight_decay: 1e-4,
            decay_lr: true,
            adv_weight: 1.0,
            cycle_weight: 10.0,
            identity_weight: 10.0,
            cam_weight: 1000.0,
            seed: 0,
            augment: true,
            init: None,
            precision: Precision::F32,
        }
    }
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Folder holding trainA, trainB, testA and testB, or a bucket URL (`s3://`, `gs://`,
    /// `az://`) with that layout, whose images are fetched into the cache (see
    /// [`crate::data::source`]).
    pub root: Option<PathBuf>,
    /// Background threads decoding and augmenting images, per domain.
    pub workers: usize,
    /// If `root` does not exist, write the procedural toy data set there first (the smoke
    /// config's demo data).
    pub toy_if_missing: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            root: None,
            workers: 2,
            toy_if_missing: false,
        }
    }
}

/// `[checkpoint]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Steps between checkpoints (official `save_freq`).
    pub every: u64,
    /// Checkpoints kept, newest first (milestones aside).
    pub keep: usize,
    /// Checkpoints at multiples of this step are never deleted; 0: none.
    pub milestone_every: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 100_000,
            keep: 3,
            milestone_every: 0,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Steps between metrics lines.
    pub every: u64,
    /// Steps between sample grids (official `print_freq`); 0: none.
    pub sample_every: u64,
    pub tensorboard: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            every: 100,
            sample_every: 1000,
            tensorboard: true,
        }
    }
}

/// `[eval]`: KID and FID of both generators on the test sets during training (see
/// [`crate::eval`]), logged as `kid_a2b`, `fid_a2b`, `kid_b2a` and `fid_b2a`; off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Steps between evaluations; 0: none. Needs `features`.
    pub every: u64,
    /// pytorch-fid's Inception weights, `pt_inception-2015-12-05-6726825d.pth`.
    pub features: Option<PathBuf>,
    /// Test images of each domain evaluated (the first, sorted).
    pub images: usize,
    /// KID subsets, and the most images a subset takes from each set.
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            features: None,
            images: 100,
            kid_subsets: 100,
            kid_subset_size: 1000,
        }
    }
}
