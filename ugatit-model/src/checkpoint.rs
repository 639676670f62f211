//! Run folders and checkpoints.
//!
//! ```text
//! RUN/
//!   checkpoints/
//!     step-00001000/          one complete checkpoint
//!       nets.safetensors      all six networks (official keys) + model config + step
//!       ...                   files the trainer adds (optimiser state, data order, ...)
//!     .step-00002000.partial/ a checkpoint being written: never read
//! ```
//!
//! A checkpoint is staged in a hidden `.partial` folder, every file synced, then renamed into
//! place in one atomic step: a crash at any moment leaves the previous checkpoints intact and no
//! `step-*` folder that is incomplete.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::config::ModelConfig;
use crate::nets::Ugatit;
use crate::weights::safetensors_file::{self, FileKind, FileMeta};
use crate::weights::WeightsError;

/// File holding the six networks inside a checkpoint folder.
pub const CHECKPOINT_FILE: &str = "nets.safetensors";
const PREFIX: &str = "step-";

/// A run folder (local path).
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

/// One complete checkpoint of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub step: u64,
    pub dir: PathBuf,
}

impl Checkpoint {
    /// The networks' file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }
}

/// Folder name of the checkpoint at `step` (zero-padded so names sort by step).
pub fn checkpoint_name(step: u64) -> String {
    format!("{PREFIX}{step:08}")
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Complete checkpoints, oldest first. Staged (`.partial`) folders and folders without the
    /// networks' file are skipped.
    pub fn checkpoints(&self) -> std::io::Result<Vec<Checkpoint>> {
        let dir = self.checkpoints_dir();
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(step) = name
                .strip_prefix(PREFIX)
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let c = Checkpoint {
                step,
                dir: entry.path(),
            };
            if c.file().is_file() {
                found.push(c);
            }
        }
        found.sort_by_key(|c| c.step);
        Ok(found)
    }

    /// The newest complete checkpoint.
    pub fn latest(&self) -> std::io::Result<Option<Checkpoint>> {
        Ok(self.checkpoints()?.pop())
    }

    /// Starts writing the checkpoint of `step`; nothing is visible until
    /// [`StagedCheckpoint::commit`].
    pub fn begin_checkpoint(&self, step: u64) -> Result<StagedCheckpoint, WeightsError> {
        let dir = self.checkpoints_dir();
        let name = checkpoint_name(step);
        let staging = dir.join(format!(".{name}.partial"));
        let io = |e| WeightsError::io(&staging, e);
        if staging.exists() {
            // Left by a crash: it never became a checkpoint.
            std::fs::remove_dir_all(&staging).map_err(io)?;
        }
        std::fs::create_dir_all(&staging).map_err(io)?;
        Ok(StagedCheckpoint {
            staging,
            target: dir.join(name),
            step,
        })
    }
}

/// A checkpoint being written.
#[derive(Debug)]
pub struct StagedCheckpoint {
    staging: PathBuf,
    target: PathBuf,
    step: u64,
}

impl StagedCheckpoint {
    /// The staging folder: the trainer writes its own files here before [`Self::commit`].
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    /// Writes the six networks with the model config and step.
    pub fn write_nets<B: Backend>(
        &self,
        nets: &Ugatit<B>,
        config: &ModelConfig,
    ) -> Result<(), WeightsError> {
        let meta = FileMeta {
            kind: FileKind::Checkpoint,
            config: config.clone(),
            direction: None,
            step: Some(self.step),
        };
        safetensors_file::write(
            &self.staging.join(CHECKPOINT_FILE),
            &nets.to_state_dict(),
            &meta,
        )
    }

    /// Syncs every file and renames the folder into place. Replaces an older checkpoint of the
    /// same step (a re-run after a crash between its rename and later steps).
    pub fn commit(self) -> Result<Checkpoint, WeightsError> {
        let io = |e| WeightsError::io(&self.staging, e);
        if !self.staging.join(CHECKPOINT_FILE).is_file() {
            return Err(WeightsError::corrupt(
                &self.staging,
                "a checkpoint needs its networks: call write_nets before commit",
            ));
        }
        for entry in std::fs::read_dir(&self.staging).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
            }
        }
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target).map_err(io)?;
        }
        std::fs::rename(&self.staging, &self.target).map_err(io)?;
        if let Some(parent) = self.target.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(Checkpoint {
            step: self.step,
            dir: self.target,
        })
    }
}
