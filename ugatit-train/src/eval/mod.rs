//! Measuring a model as the U-GAT-IT paper does: KID x100 (with its standard deviation over
//! subsets) between the translations of one domain's test images and the other domain's test
//! images, in the feature space of the FID Inception-v3; FID, which most papers since give; and
//! the cycle and identity L1 on the test set, which need no feature network.
//!
//! - [`translate`]: the test images, translated, cycled back and passed through as identity;
//! - [`inception`]: pytorch-fid's Inception-v3 to its 2048-d pool (blocks in
//!   `inception_blocks`, the weights file in `weights`);
//! - [`kid`] and [`fid`]: the two distances on [`Features`] (FID's eigenvalues in `linalg`).
//!
//! Translations are scored as saved 8-bit images, and the target images at the model's size
//! after the official test transform, so both sets reach the Inception alike.

pub mod features;
pub mod fid;
pub mod inception;
mod inception_blocks;
pub mod kid;
mod linalg;
pub mod translate;
mod weights;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Serialize;
use ugatit_model::{AnyGenerator, Direction};
use ugatit_store::formats::safetensors_file::describe;
use ugatit_store::formats::safetensors_reader::SafetensorsFile;
use ugatit_store::formats::{is_pytorch, read_file};
use ugatit_store::{load_generator, Contents, LoadedGenerator};

pub use features::Features;
pub use fid::fid;
pub use inception::FidInception;
pub use kid::{kid, kid_on_subsets, mmd2_unbiased, Kid, KidOptions};
pub use translate::{translate, translate_images, TestImages, Translated};

/// An evaluation problem, naming the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {message}", path.display())]
    Weights { path: PathBuf, message: String },
    #[error("{}: {message}", dir.display())]
    Images { dir: PathBuf, message: String },
    #[error("{0}")]
    TooFew(String),
    #[error(transparent)]
    Model(#[from] ugatit_store::WeightsError),
}

/// What `ugatit-train eval` measures.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Any model path `ugatit-infer` reads.
    pub model: PathBuf,
    pub direction: Direction,
    /// The data set folder (its `testA` and `testB`).
    pub data: PathBuf,
    /// pytorch-fid's Inception weights; without them only the L1 losses are measured.
    pub inception: Option<PathBuf>,
    pub kid: KidOptions,
    /// At most this many test images of each domain (the first, sorted).
    pub limit: Option<usize>,
    /// Images a forward pass.
    pub batch: usize,
}

/// KID x100, as the paper prints it.
#[derive(Debug, Clone, Serialize)]
pub struct KidX100 {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// The distances between translations and real target images.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub kid_x100: KidX100,
    pub fid: f64,
}

/// What `eval` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file the generator came from (a run folder resolves to its newest checkpoint).
    pub model: PathBuf,
    pub step: Option<u64>,
    pub direction: String,
    pub source: PathBuf,
    pub target: PathBuf,
    pub source_images: usize,
    pub target_images: usize,
    /// `None` without an Inception weights file.
    pub scores: Option<Scores>,
    /// `None` when the model holds only the one generator.
    pub cycle_l1: Option<f64>,
    pub identity_l1: f64,
    /// Unreadable test images passed over, a generator missing for the cycle, and the like.
    pub notes: Vec<String>,
}

/// Translates the test set with the model and measures it.
pub fn evaluate<B: Backend>(
    options: &EvalOptions,
    device: &B::Device,
) -> Result<Report, EvalError> {
    // The feature network first: a wrong weights file fails before the long translation pass.
    let inception = options
        .inception
        .as_deref()
        .map(|p| FidInception::<B>::load(p, device))
        .transpose()?;
    let loaded = load_generator::<B>(&options.model, options.direction, device)?;
    let mut notes: Vec<String> = loaded
        .skipped
        .iter()
        .map(|s| format!("damaged checkpoint passed over: {s}"))
        .collect();
    let reverse = match reverse_generator(&loaded, device) {
        Ok(g) => Some(g),
        Err(why) => {
            notes.push(format!("no cycle L1: {why}"));
            None
        }
    };
    let (from, to) = match options.direction {
        Direction::A2B => ("testA", "testB"),
        Direction::B2A => ("testB", "testA"),
    };
    let size = loaded.config.img_size as u32;
    let source = TestImages::read(&options.data.join(from), size, options.limit)?;
    let target = TestImages::read(&options.data.join(to), size, options.limit)?;
    notes.extend(source.skipped.iter().chain(&target.skipped).cloned());

    let forward = |x| loaded.generator.forward(x).image;
    let backward = reverse.as_ref().map(|g| move |x| g.forward(x).image);
    let done = translate::<B>(
        &forward,
        backward.as_ref().map(|b| b as translate::Translate<B>),
        &source.images,
        &target.images,
        options.batch,
        device,
    );
    let scores = inception
        .map(|net| {
            let fake = net.features(&done.images, options.batch);
            let real = net.features(&target.images, options.batch);
            scores(&fake, &real, &options.kid)
        })
        .transpose()?;
    Ok(Report {
        model: loaded.path.clone(),
        step: loaded.step,
        direction: options.direction.as_str().into(),
        source: source.dir,
        target: target.dir,
        source_images: source.images.len(),
        target_images: target.images.len(),
        scores,
        cycle_l1: done.cycle_l1,
        identity_l1: done.identity_l1,
        notes,
    })
}

/// KID (x100) and FID between the features of translations and of real images.
pub fn scores(
    fake: &Features,
    real: &Features,
    kid_options: &KidOptions,
) -> Result<Scores, EvalError> {
    let k = kid(fake, real, kid_options)?;
    Ok(Scores {
        kid_x100: KidX100 {
            mean: 100.0 * k.mean,
            std: 100.0 * k.std,
            subsets: k.subsets,
            subset_size: k.subset_size,
        },
        fid: fid(fake, real)?,
    })
}

/// The other generator of the model `loaded` came from, for the cycle; an error saying why
/// not when the source holds only one (an exported generator, a bare state dict).
fn reverse_generator<B: Backend>(
    loaded: &LoadedGenerator<B>,
    device: &B::Device,
) -> Result<AnyGenerator<B>, String> {
    let file = &loaded.path;
    let whole = if ugatit_store::formats::tf::checkpoint::locate(file).is_some() {
        true
    } else if is_pytorch(file).map_err(|e| e.to_string())? {
        matches!(
            read_file(file).map_err(|e| e.to_string())?.contents,
            Contents::Model(_)
        )
    } else {
        let st = SafetensorsFile::open(file).map_err(|e| e.to_string())?;
        describe(&st).map_err(|e| e.to_string())?.is_model
    };
    if !whole {
        return Err(format!("{} holds only one generator", file.display()));
    }
    let other = match loaded.direction {
        Direction::A2B => Direction::B2A,
        Direction::B2A => Direction::A2B,
    };
    load_generator::<B>(Path::new(file), other, device)
        .map(|g| g.generator)
        .map_err(|e| e.to_string())
}

impl Report {
    /// The report as lines for a terminal.
    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "{} of {} ({} images) against {} ({} images), model {}{}",
            self.direction,
            self.source.display(),
            self.source_images,
            self.target.display(),
            self.target_images,
            self.model.display(),
            self.step.map_or(String::new(), |s| format!(" (step {s})")),
        )];
        match &self.scores {
            Some(s) => {
                let k = &s.kid_x100;
                lines.push(format!(
                    "KID x100     {:.4} +- {:.4}  ({} subsets of {})",
                    k.mean, k.std, k.subsets, k.subset_size
                ));
                lines.push(format!("FID          {:.4}", s.fid));
            }
            None => lines.push(format!(
                "KID, FID     not measured: pass --features {} (see the README's Evaluation section)",
                inception::WEIGHTS_FILE
            )),
        }
        if let Some(c) = self.cycle_l1 {
            lines.push(format!("cycle L1     {c:.6}"));
        }
        lines.push(format!("identity L1  {:.6}", self.identity_l1));
        lines.extend(self.notes.iter().map(|n| format!("note: {n}")));
        lines.join("\n")
    }
}
