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
//! A checkpoint is staged in a hidden `.partial` folder, every file synced, a `manifest.json`
//! with each file's size and CRC-32 written last, then the folder is renamed into place in one
//! atomic step: a crash at any moment leaves the previous checkpoints intact and no `step-*`
//! folder that is incomplete. Readers verify the manifest, so a checkpoint damaged later (a bad
//! disk, a truncated copy) is reported and the previous one used.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use ugatit_model::{ModelConfig, Ugatit};

use crate::error::WeightsError;
use crate::formats::safetensors_file::{self, FileKind, FileMeta, StoreDtype};

/// File holding the six networks inside a checkpoint folder.
pub const CHECKPOINT_FILE: &str = "nets.safetensors";
/// Sizes and checksums of every other file of a checkpoint folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Version of the checkpoint folder layout; readers refuse newer ones.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    step: u64,
    files: BTreeMap<String, FileSum>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct FileSum {
    bytes: u64,
    crc32: u32,
}

fn file_sum(path: &Path) -> std::io::Result<FileSum> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileSum {
        bytes,
        crc32: hasher.finalize(),
    })
}
const PREFIX: &str = "step-";
/// Suffix of a checkpoint moved aside while one of the same step replaces it.
const REPLACED: &str = ".replaced";

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

    /// The format version its manifest records, if the manifest is readable.
    pub fn format_version(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join(MANIFEST_FILE)).ok()?;
        serde_json::from_str::<Manifest>(&text)
            .ok()
            .map(|m| m.format_version)
    }

    /// Checks the format version and every file against the manifest.
    pub fn verify(&self) -> Result<(), WeightsError> {
        self.verify_files(None)
    }

    /// Checks the format version and the networks' file against the manifest, and nothing
    /// else: what translating or exporting reads (the optimiser state can be gigabytes).
    pub fn verify_networks(&self) -> Result<(), WeightsError> {
        self.verify_files(Some(&[CHECKPOINT_FILE]))
    }

    /// Checks the format version and the files named in `only` (all, for `None`).
    fn verify_files(&self, only: Option<&[&str]>) -> Result<(), WeightsError> {
        let manifest_path = self.dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            WeightsError::corrupt(
                &self.dir,
                format!("incomplete checkpoint: no readable {MANIFEST_FILE} ({e})"),
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            WeightsError::corrupt(&manifest_path, format!("unreadable manifest ({e})"))
        })?;
        if manifest.format_version != CHECKPOINT_FORMAT_VERSION {
            return Err(WeightsError::Unsupported {
                path: self.dir.clone(),
                reason: format!(
                    "checkpoint format version {} (this ugatit-rs reads version {CHECKPOINT_FORMAT_VERSION})",
                    manifest.format_version
                ),
            });
        }
        for (name, want) in &manifest.files {
            if only.is_some_and(|only| !only.contains(&name.as_str())) {
                continue;
            }
            let path = self.dir.join(name);
            let got = file_sum(&path).map_err(|e| WeightsError::io(&path, e))?;
            if got.bytes != want.bytes {
                return Err(WeightsError::corrupt(
                    &path,
                    format!(
                        "{} bytes, but the manifest says {} (truncated?)",
                        got.bytes, want.bytes
                    ),
                ));
            }
            if got.crc32 != want.crc32 {
                return Err(WeightsError::corrupt(
                    &path,
                    "checksum mismatch: the file is damaged",
                ));
            }
        }
        Ok(())
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
        let mut found = BTreeMap::new();
        let mut aside = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let (step, replaced) = match name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(REPLACED))
            {
                Some(inner) => (inner, true),
                None => (name.as_str(), false),
            };
            let Some(step) = step
                .strip_prefix(PREFIX)
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let c = Checkpoint {
                step,
                dir: entry.path(),
            };
            if !c.file().is_file() {
                continue;
            }
            if replaced {
                aside.push(c);
            } else {
                found.insert(step, c);
            }
        }
        // A checkpoint moved aside by a replacement that crashed before its successor was
        // renamed into place is still the whole checkpoint of its step.
        for c in aside {
            found.entry(c.step).or_insert(c);
        }
        Ok(found.into_values().collect())
    }

    /// The newest complete checkpoint, unverified.
    pub fn latest(&self) -> std::io::Result<Option<Checkpoint>> {
        Ok(self.checkpoints()?.pop())
    }

    /// The newest checkpoint that passes [`Checkpoint::verify`], and the newer ones that did not
    /// (with why), for the caller to report.
    pub fn latest_verified(&self) -> Result<(Option<Checkpoint>, Vec<WeightsError>), WeightsError> {
        self.latest_passing(Checkpoint::verify, |_, e| Ok(e))
    }

    /// As [`Self::latest_verified`], checking only the networks' file
    /// ([`Checkpoint::verify_networks`]).
    pub fn latest_with_networks(
        &self,
    ) -> Result<(Option<Checkpoint>, Vec<WeightsError>), WeightsError> {
        self.latest_passing(Checkpoint::verify_networks, |_, e| Ok(e))
    }

    /// The newest checkpoint that passes `check`, and what `on_bad` made of each newer one that
    /// did not (newest first).
    fn latest_passing<T>(
        &self,
        check: impl Fn(&Checkpoint) -> Result<(), WeightsError>,
        mut on_bad: impl FnMut(Checkpoint, WeightsError) -> Result<T, WeightsError>,
    ) -> Result<(Option<Checkpoint>, Vec<T>), WeightsError> {
        let all = self
            .checkpoints()
            .map_err(|e| WeightsError::io(self.checkpoints_dir(), e))?;
        let mut bad = Vec::new();
        for c in all.into_iter().rev() {
            match check(&c) {
                Ok(()) => return Ok((Some(c), bad)),
                Err(e) => bad.push(on_bad(c, e)?),
            }
        }
        Ok((None, bad))
    }

    /// As [`Self::latest_verified`], and each damaged checkpoint newer than the one found is
    /// renamed aside (`.step-N.damaged` beside it), so that retention never counts it among the
    /// checkpoints to keep: what a resuming trainer does. Returns the damaged ones' errors with
    /// where each went. Readers use [`Self::latest_verified`], which changes nothing.
    pub fn latest_verified_setting_aside(
        &self,
    ) -> Result<(Option<Checkpoint>, Vec<SetAside>), WeightsError> {
        self.latest_passing(Checkpoint::verify, |c, error| {
            let name = c.dir.file_name().unwrap_or_default().to_string_lossy();
            let aside = c.dir.with_file_name(format!(".{name}.damaged"));
            // An older copy set aside of the same step gives way to this one.
            let _ = std::fs::remove_dir_all(&aside);
            std::fs::rename(&c.dir, &aside).map_err(|io| WeightsError::io(&c.dir, io))?;
            Ok(SetAside {
                error,
                moved_to: aside,
            })
        })
    }

    /// Deletes checkpoints [`retention`] does not keep. Returns the steps removed.
    pub fn prune(&self, keep: usize, milestone_every: u64) -> std::io::Result<Vec<u64>> {
        let all = self.checkpoints()?;
        let steps: Vec<u64> = all.iter().map(|c| c.step).collect();
        let doomed = retention(&steps, keep, milestone_every, None);
        for c in all.iter().filter(|c| doomed.contains(&c.step)) {
            std::fs::remove_dir_all(&c.dir)?;
        }
        Ok(doomed)
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
            source: None,
            variant: Default::default(),
        };
        safetensors_file::write(
            &self.staging.join(CHECKPOINT_FILE),
            &nets.to_state_dict(),
            &meta,
            StoreDtype::F32,
        )
    }

    /// Syncs every file and renames the folder into place. Replaces an older checkpoint of the
    /// same step (a re-run after a crash between its rename and later steps) by moving it aside
    /// first and deleting it only once the new one is in place, so a crash between the two
    /// renames leaves one of them whole (listed by [`RunDir::checkpoints`]).
    pub fn commit(self) -> Result<Checkpoint, WeightsError> {
        let io = |e| WeightsError::io(&self.staging, e);
        if !self.staging.join(CHECKPOINT_FILE).is_file() {
            return Err(WeightsError::corrupt(
                &self.staging,
                "a checkpoint needs its networks: call write_nets before commit",
            ));
        }
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&self.staging).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.is_file() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
                let name = path.file_name().map(|n| n.to_string_lossy().to_string());
                if let Some(name) = name.filter(|n| n != MANIFEST_FILE) {
                    files.insert(name, file_sum(&path).map_err(io)?);
                }
            }
        }
        let manifest = Manifest {
            format_version: CHECKPOINT_FORMAT_VERSION,
            step: self.step,
            files,
        };
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
        crate::atomic::write_atomic(&self.staging.join(MANIFEST_FILE), text.as_bytes())?;
        let parent = self.target.parent().unwrap_or(Path::new("."));
        let sync_parent = || std::fs::File::open(parent).and_then(|d| d.sync_all());
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let aside = parent.join(format!(".{name}{REPLACED}"));
        if self.target.exists() {
            if aside.exists() {
                // Left by an earlier crash after its replacement was in place: stale.
                std::fs::remove_dir_all(&aside).map_err(io)?;
            }
            std::fs::rename(&self.target, &aside).map_err(io)?;
        }
        std::fs::rename(&self.staging, &self.target).map_err(io)?;
        sync_parent().map_err(io)?;
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(io)?;
        }
        Ok(Checkpoint {
            step: self.step,
            dir: self.target,
        })
    }
}

/// A damaged checkpoint set aside by [`RunDir::latest_verified_setting_aside`]: why it failed
/// verification, and where it was moved.
#[derive(Debug)]
pub struct SetAside {
    pub error: WeightsError,
    pub moved_to: PathBuf,
}

/// The one retention rule, for a run folder and a bucket alike: of `steps`, the newest `keep`
/// (at least one), every multiple of `milestone_every` (when non-zero) and `pinned` (what a
/// bucket's `latest` names) are kept. Returns the others, the steps to delete, ascending.
pub fn retention(
    steps: &[u64],
    keep: usize,
    milestone_every: u64,
    pinned: Option<u64>,
) -> Vec<u64> {
    let mut steps = steps.to_vec();
    steps.sort_unstable();
    steps.dedup();
    let cut = steps.len().saturating_sub(keep.max(1));
    steps
        .into_iter()
        .take(cut)
        .filter(|&s| {
            Some(s) != pinned && !(milestone_every > 0 && s.is_multiple_of(milestone_every))
        })
        .collect()
}
