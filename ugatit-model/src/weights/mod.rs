//! Every way a model is stored, and one entry point that recognises them all.
//!
//! Formats: official UGATIT-pytorch `.pt` files ([`official`]), our safetensors files
//! ([`safetensors_file`]: a full checkpoint or a generator-only export), and run folders and
//! checkpoint folders ([`crate::checkpoint`]). Architectures are read from metadata where we
//! wrote it, and inferred from tensor shapes otherwise ([`infer`]).

mod error;
pub mod infer;
pub mod official;
pub mod safetensors_file;
mod state_dict;

pub use error::{KeyError, WeightsError};
pub use state_dict::{check_all_used, ParamSource, StateDict, StateWriter};

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::any_generator::{AnyGenerator, Variant};
use crate::checkpoint::{RunDir, CHECKPOINT_FILE};
use crate::config::ModelConfig;
use crate::nets::{generator_from, split_networks, Direction, Ugatit};
use crate::tf::checkpoint::{build as tf_build, scope as tf_scope};
use crate::tf::TfConfig;

/// What was found at a model path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFormat {
    /// An official UGATIT-pytorch `torch.save` file.
    OfficialPytorch,
    /// Our full checkpoint (all six networks).
    Checkpoint,
    /// Our generator-only export.
    GeneratorFile,
    /// A plain safetensors state dict with official keys and no metadata of ours.
    PlainSafetensors,
}

/// Tensors read from a model path, with what is known of their architecture.
#[derive(Debug, Clone)]
pub struct LoadedTensors {
    /// The file the tensors came from (a run folder resolves to its newest checkpoint).
    pub path: PathBuf,
    pub format: SourceFormat,
    pub contents: Contents,
    pub config: ModelConfig,
    /// False when `config.img_size` is a guess: a light generator's shapes do not fix it.
    pub img_size_known: bool,
    /// For a generator-only source, the direction it translates (None when unknown).
    pub direction: Option<Direction>,
    /// Training step, where the source records one.
    pub step: Option<u64>,
    /// Newer checkpoints of a run folder that failed verification and were passed over.
    pub skipped: Vec<String>,
    /// The generator architecture the tensors are for.
    pub variant: Variant,
}

/// The tensors of a model path.
#[derive(Debug, Clone)]
pub enum Contents {
    /// Several networks, keys prefixed by network (`genA2B.DownBlock.1.weight`).
    Model(StateDict),
    /// One generator, keys without a prefix (`DownBlock.1.weight`).
    Generator(StateDict),
}

/// A generator ready to translate, with its architecture.
#[derive(Debug)]
pub struct LoadedGenerator<B: Backend> {
    pub generator: AnyGenerator<B>,
    pub config: ModelConfig,
    pub img_size_known: bool,
    pub direction: Direction,
    pub path: PathBuf,
    /// Training step, where the source records one.
    pub step: Option<u64>,
    /// Newer checkpoints of a run folder that failed verification and were passed over.
    pub skipped: Vec<String>,
}

/// Reads the tensors at `path`: a run folder, a checkpoint folder, one of our safetensors files,
/// or an official `.pt`.
pub fn read_tensors(path: &Path) -> Result<LoadedTensors, WeightsError> {
    if let Some(prefix) = crate::tf::checkpoint::locate(path) {
        prefix?;
        return Err(WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: "a TensorFlow U-GAT-IT checkpoint: its generators translate and export, but                      training from it is out of scope (its discriminators differ)"
                .into(),
        });
    }
    let (file, skipped) = resolve(path)?;
    let mut t = read_file(&file)?;
    t.skipped = skipped;
    Ok(t)
}

fn read_file(file: &Path) -> Result<LoadedTensors, WeightsError> {
    let file = file.to_path_buf();
    let mut magic = [0u8; 8];
    let n = std::fs::File::open(&file)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| WeightsError::io(&file, e))?;
    if n == 0 {
        return Err(WeightsError::not_ugatit(&file, "the file is empty"));
    }
    if magic.starts_with(b"PK\x03\x04") || magic.starts_with(&[0x80]) {
        return official::read(&file);
    }
    safetensors_file::read(&file)
}

/// Loads all six networks (for resuming or fine-tuning). Fails on a generator-only source.
pub fn load_model<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Ugatit<B>, LoadedTensors), WeightsError> {
    let t = read_tensors(path)?;
    let Contents::Model(tensors) = &t.contents else {
        return Err(WeightsError::Unsupported {
            path: t.path.clone(),
            reason: "holds a single generator; training needs a checkpoint with all six networks"
                .into(),
        });
    };
    let nets = split_networks(tensors).map_err(|e| keys(&t.path, e))?;
    if nets.len() < 6 {
        return Err(WeightsError::Unsupported {
            path: t.path.clone(),
            reason: format!(
                "holds only {}, not all six networks (a generator-only file cannot resume training)",
                nets.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let model =
        Ugatit::from_state_dict(&t.config, tensors, device).map_err(|e| keys(&t.path, e))?;
    Ok((model, t))
}

/// Loads the generator for `direction` from any model path. A generator-only file that knows
/// its direction refuses the other one.
pub fn load_generator<B: Backend>(
    path: &Path,
    direction: Direction,
    device: &B::Device,
) -> Result<LoadedGenerator<B>, WeightsError> {
    if let Some(url) = path.to_str().filter(|s| crate::remote::is_url(s)) {
        let local = crate::remote::fetch(url).map_err(|e| WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: e.message,
        })?;
        return load_generator(&local, direction, device);
    }
    if let Some(prefix) = crate::tf::checkpoint::locate(path) {
        return load_tf_generator(&prefix?, direction, device);
    }
    let t = read_tensors(path)?;
    if let Some(d) = t.direction {
        if d != direction {
            return Err(WeightsError::Unsupported {
                path: t.path.clone(),
                reason: format!(
                    "this generator translates {d}; it cannot translate {direction} \
                     (export the {direction} generator, or pass --direction {d})"
                ),
            });
        }
    }
    let name = direction.generator_name();
    let own = match &t.contents {
        Contents::Generator(sd) => sd.clone(),
        Contents::Model(sd) => network(sd, name),
    };
    if own.is_empty() {
        return Err(WeightsError::not_ugatit(
            &t.path,
            format!("it holds no {name} generator"),
        ));
    }
    let generator = match t.variant {
        Variant::Pytorch => AnyGenerator::Pytorch(Box::new(
            generator_from(&t.config, &own, name, device).map_err(|e| keys(&t.path, e))?,
        )),
        Variant::Tf => {
            let cfg = TfConfig {
                ch: t.config.ch,
                n_res: t.config.n_res,
                light: t.config.light,
                img_size: (!t.config.light).then_some(t.config.img_size),
            };
            let g =
                tf_build(cfg, &own, tf_scope(direction), device).map_err(|e| keys(&t.path, e))?;
            AnyGenerator::Tf(Box::new(g), own)
        }
    };
    Ok(LoadedGenerator {
        generator,
        config: t.config,
        img_size_known: t.img_size_known,
        direction,
        path: t.path,
        step: t.step,
        skipped: t.skipped,
    })
}

/// The generator of a TensorFlow checkpoint (`prefix` as [`crate::tf::checkpoint::locate`]
/// finds it).
fn load_tf_generator<B: Backend>(
    prefix: &Path,
    direction: Direction,
    device: &B::Device,
) -> Result<LoadedGenerator<B>, WeightsError> {
    let (cfg, sd) = crate::tf::checkpoint::read_generator(prefix, direction)?;
    let generator = tf_build(cfg, &sd, tf_scope(direction), device).map_err(|e| keys(prefix, e))?;
    let config = ModelConfig {
        img_size: cfg.img_size.unwrap_or(256),
        ch: cfg.ch,
        n_res: cfg.n_res,
        light: cfg.light,
        ..ModelConfig::default()
    };
    let step = prefix.file_name().and_then(|n| {
        n.to_string_lossy()
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
    });
    Ok(LoadedGenerator {
        generator: AnyGenerator::Tf(Box::new(generator), sd),
        config,
        img_size_known: cfg.img_size.is_some(),
        direction,
        path: prefix.to_path_buf(),
        step,
        skipped: Vec::new(),
    })
}

/// A run folder resolves to its newest verified checkpoint's file (with the newer ones passed
/// over, as messages), a checkpoint folder to its file; anything else is taken as a file.
fn resolve(path: &Path) -> Result<(PathBuf, Vec<String>), WeightsError> {
    let meta = std::fs::metadata(path).map_err(|e| WeightsError::io(path, e))?;
    if !meta.is_dir() {
        return Ok((path.to_path_buf(), Vec::new()));
    }
    let in_checkpoint = path.join(CHECKPOINT_FILE);
    if in_checkpoint.is_file() {
        return Ok((in_checkpoint, Vec::new()));
    }
    let run = RunDir::new(path);
    if run.checkpoints_dir().is_dir() {
        let (found, bad) = run.latest_verified()?;
        let bad: Vec<String> = bad.iter().map(|e| e.to_string()).collect();
        return match found {
            Some(c) => Ok((c.file(), bad)),
            None if bad.is_empty() => Err(WeightsError::not_ugatit(
                path,
                "this run folder holds no complete checkpoint yet",
            )),
            None => Err(WeightsError::corrupt(
                path,
                format!("no usable checkpoint: {}", bad.join("; ")),
            )),
        };
    }
    Err(WeightsError::not_ugatit(
        path,
        "a folder that is neither a run folder (no checkpoints/) nor a checkpoint (no nets.safetensors)",
    ))
}

/// The tensors of network `name` from a prefixed state dict, without the prefix.
pub fn network(sd: &StateDict, name: &str) -> StateDict {
    let prefix = format!("{name}.");
    sd.iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

pub(crate) fn keys(path: &Path, cause: KeyError) -> WeightsError {
    WeightsError::Keys {
        path: path.to_path_buf(),
        cause,
    }
}
