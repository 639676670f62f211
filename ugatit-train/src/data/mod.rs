//! Two-domain image folders (local, or fetched from a bucket: [`source`]) and the
//! deterministic, prefetching stream of training batches; checking a data set before training
//! ([`check`]) and making one from raw photos ([`prepare`]).
//!
//! Every random choice is a function of the run seed, the domain and a candidate index, so the
//! stream is the same whatever the thread timing, and resuming needs only the index of the next
//! candidate (saved in each checkpoint). Candidate `k` of a domain is image `perm_e[k mod n]`
//! of pass `e = k div n`, where each pass is a fresh seeded shuffle (the official loaders
//! reshuffle every pass); its augmentation draws from a generator seeded with `k`.

mod augment;
pub mod check;
pub mod prepare;
mod scan;
pub mod source;

pub use augment::{push_planar, transform};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use image::RgbImage;
use ugatit_io::image_file::{list_images, read_rgb, DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS};
use ugatit_model::init::SplitMix64;

/// A problem with a data folder that stops the run before training.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {cause}", dir.display())]
    Io { dir: PathBuf, cause: std::io::Error },
    #[error("{}: no images ({} files)", dir.display(), IMAGE_EXTENSIONS.join(", "))]
    Empty { dir: PathBuf },
    #[error("{}: no usable image: all {count} failed to decode", dir.display())]
    NoUsable { dir: PathBuf, count: usize },
    #[error("{}: the image loading threads stopped (a decoder crashed)", dir.display())]
    WorkersStopped { dir: PathBuf },
}

/// One domain's image files, sorted.
#[derive(Debug, Clone)]
pub struct Domain {
    pub dir: PathBuf,
    pub files: Arc<Vec<PathBuf>>,
}

impl Domain {
    /// Lists `dir`; an empty or missing folder is an error naming it.
    pub fn open(dir: &Path) -> Result<Self, DataError> {
        let files = list_images(dir).map_err(|cause| DataError::Io {
            dir: dir.to_path_buf(),
            cause,
        })?;
        if files.is_empty() {
            return Err(DataError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Arc::new(files),
        })
    }

    /// The file of candidate `k` for a stream seeded with `seed`.
    pub fn candidate(&self, seed: u64, k: u64) -> &Path {
        let n = self.files.len() as u64;
        let pass = k / n;
        let mut order: Vec<usize> = (0..self.files.len()).collect();
        shuffle(&mut order, &mut SplitMix64::for_stream(&[seed, pass]));
        &self.files[order[(k % n) as usize]]
    }
}

/// Fisher-Yates with our generator.
fn shuffle(v: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// A decoded, transformed candidate, or why its file was skipped.
type Candidate = (u64, Result<RgbImage, (PathBuf, String)>);

/// How a stream decodes and augments.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    pub seed: u64,
    pub size: u32,
    pub augment: bool,
    /// Decoding threads.
    pub workers: usize,
    /// Candidates decoded ahead of use.
    pub prefetch: usize,
}

/// The stream of one domain: worker threads decode and augment candidates ahead of use; the
/// consumer takes them in index order, skipping files that fail to decode.
pub struct Stream {
    domain: Domain,
    next: u64,
    received: BTreeMap<u64, Result<RgbImage, (PathBuf, String)>>,
    rx: Receiver<Candidate>,
    /// Files that failed to decode (each reported and counted once, across resumes too).
    skipped: BTreeSet<PathBuf>,
}

/// What a caller is told about skipped files.
pub type Warn<'a> = &'a mut dyn FnMut(&Path, &str);

impl Stream {
    /// Starts `workers` threads producing candidates from index `start`.
    pub fn start(
        domain: Domain,
        settings: &StreamSettings,
        start: u64,
        known_bad: BTreeSet<PathBuf>,
    ) -> Self {
        let StreamSettings {
            seed,
            size,
            augment,
            workers,
            prefetch,
        } = *settings;
        let (tx, rx) = sync_channel::<Candidate>(prefetch.max(1));
        let counter = Arc::new(AtomicU64::new(start));
        for _ in 0..workers.max(1) {
            let (tx, counter, domain) = (tx.clone(), counter.clone(), domain.clone());
            std::thread::spawn(move || loop {
                let k = counter.fetch_add(1, Ordering::SeqCst);
                let path = domain.candidate(seed, k);
                // A decoder that panics on a hostile file fails that candidate, not the run.
                let item = std::panic::catch_unwind(|| {
                    read_rgb(path, DEFAULT_MAX_PIXELS)
                        .map_err(|e| e.to_string())
                        .map(|img| {
                            transform(
                                &img,
                                size,
                                augment,
                                &mut SplitMix64::for_stream(&[seed, k, 0xa06]),
                            )
                        })
                })
                .unwrap_or_else(|_| Err("the decoder crashed on this file".into()))
                .map_err(|e| (path.to_path_buf(), e));
                if tx.send((k, item)).is_err() {
                    break;
                }
            });
        }
        Self {
            domain,
            next: start,
            received: BTreeMap::new(),
            rx,
            skipped: known_bad,
        }
    }

    /// The files skipped so far (a checkpoint saves them, so a resumed run reports each once).
    pub fn skipped(&self) -> &BTreeSet<PathBuf> {
        &self.skipped
    }

    /// Index of the next candidate: the data-order position a checkpoint saves.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next usable image. A file that fails is reported once through `warn` and skipped;
    /// a whole pass of failures means the folder has no usable image.
    pub fn next_image(&mut self, warn: Warn) -> Result<RgbImage, DataError> {
        loop {
            let item = loop {
                if let Some(item) = self.received.remove(&self.next) {
                    break item;
                }
                match self.rx.recv() {
                    Ok((k, item)) => {
                        self.received.insert(k, item);
                    }
                    Err(_) => {
                        return Err(DataError::WorkersStopped {
                            dir: self.domain.dir.clone(),
                        })
                    }
                }
            };
            self.next += 1;
            match item {
                Ok(img) => return Ok(img),
                Err((path, reason)) => {
                    if self.skipped.insert(path.clone()) {
                        warn(&path, &reason);
                    }
                    // Every distinct file has failed (a run of failures may repeat files
                    // across passes, so it proves nothing by itself).
                    if self.skipped.len() >= self.domain.files.len() {
                        return Err(DataError::NoUsable {
                            dir: self.domain.dir.clone(),
                            count: self.domain.files.len(),
                        });
                    }
                }
            }
        }
    }

    /// `batch` images as channel-first floats in [-1, 1] (`[batch, 3, size, size]`).
    pub fn next_batch(&mut self, batch: usize, warn: Warn) -> Result<Vec<f32>, DataError> {
        let mut out = Vec::new();
        for _ in 0..batch {
            push_planar(&self.next_image(warn)?, &mut out);
        }
        Ok(out)
    }
}
