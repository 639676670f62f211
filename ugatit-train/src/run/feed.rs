//! The training batches: one deterministic stream per domain (see [`crate::data`]), started at
//! the positions a checkpoint saved, turned into `[batch, 3, S, S]` tensors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::config::Config;
use crate::data::{Domain, Stream, StreamSettings};
use crate::trainer_state::{Progress, TRAINER_FORMAT_VERSION};

/// Candidates decoded ahead of use, per domain.
const PREFETCH: usize = 8;
/// Each domain's stream is seeded apart from the other's: `seed ^ DOMAIN_SEEDS[i]`.
const DOMAIN_SEEDS: [u64; 2] = [0xa, 0xb];

/// Lists `root/trainA` and `root/trainB` (an empty or missing folder is an error naming it).
pub(super) fn open_domains(root: &Path) -> Result<[Domain; 2]> {
    Ok([
        Domain::open(&root.join("trainA"))?,
        Domain::open(&root.join("trainB"))?,
    ])
}

/// Both domains' streams.
pub(super) struct Feed {
    streams: [Stream; 2],
    batch: usize,
    size: usize,
}

impl Feed {
    /// Starts both streams where `progress` left them. Files a checkpoint recorded as bad are
    /// not reported or counted again.
    pub(super) fn start(domains: [Domain; 2], cfg: &Config, progress: &Progress) -> Self {
        let size = cfg.model.img_size;
        let start = |domain: Domain, i: usize| {
            let settings = StreamSettings {
                seed: cfg.train.seed ^ DOMAIN_SEEDS[i],
                size: size as u32,
                augment: cfg.train.augment,
                workers: cfg.data.workers,
                prefetch: PREFETCH,
            };
            let known_bad: BTreeSet<PathBuf> = progress
                .skipped_files
                .iter()
                .filter(|f| f.starts_with(&domain.dir))
                .cloned()
                .collect();
            Stream::start(domain, &settings, progress.data_position[i], known_bad)
        };
        let [a, b] = domains;
        let streams = [start(a, 0), start(b, 1)];
        Self {
            streams,
            batch: cfg.train.batch_size,
            size,
        }
    }

    /// The next batch of each domain, A then B, as `[batch, 3, S, S]` in [-1, 1]. A file that
    /// cannot be decoded is skipped with one warning.
    pub(super) fn next_batches<B: Backend>(
        &mut self,
        device: &B::Device,
    ) -> Result<(Tensor<B, 4>, Tensor<B, 4>)> {
        let mut warn = |path: &Path, reason: &str| {
            eprintln!("warning: {}: skipped ({reason})", path.display());
        };
        let shape = [self.batch, 3, self.size, self.size];
        let [a, b] = &mut self.streams;
        let a = a.next_batch(self.batch, &mut warn)?;
        let b = b.next_batch(self.batch, &mut warn)?;
        Ok((
            Tensor::from_data(TensorData::new(a, shape), device),
            Tensor::from_data(TensorData::new(b, shape), device),
        ))
    }

    /// Files skipped so far, both domains.
    pub(super) fn skipped_count(&self) -> usize {
        self.streams.iter().map(|s| s.skipped().len()).sum()
    }

    /// What a checkpoint after `step` saves of the data: both positions and the skipped files.
    pub(super) fn progress(&self, step: u64) -> Progress {
        let skipped_files: Vec<PathBuf> = self
            .streams
            .iter()
            .flat_map(|s| s.skipped().iter().cloned())
            .collect();
        Progress {
            format_version: TRAINER_FORMAT_VERSION,
            step,
            data_position: [self.streams[0].position(), self.streams[1].position()],
            skipped_images: skipped_files.len(),
            skipped_files,
            loss_scale: None,
        }
    }
}
