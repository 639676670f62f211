//! One entry point that recognises every model path: a bucket URL, a TensorFlow checkpoint, a
//! run folder (its newest verified checkpoint), a checkpoint folder, one of our safetensors
//! files or an official `.pt`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ugatit_model::nets::{generator_from, network, split_networks};
use ugatit_model::tf::{build as tf_build, scope as tf_scope, TfConfig};
use ugatit_model::{AnyGenerator, Direction, KeyError, ModelConfig, Ugatit, Variant};

use crate::checkpoint::{RunDir, CHECKPOINT_FILE};
use crate::error::WeightsError;
use crate::formats::{read_file, Contents, LoadedTensors};

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
    if let Some(prefix) = crate::formats::tf::checkpoint::locate(path) {
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
    if let Some(url) = path.to_str().filter(|s| crate::bucket::is_url(s)) {
        let local = crate::bucket::fetch(url).map_err(|e| WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: e.message,
        })?;
        return load_generator(&local, direction, device);
    }
    if let Some(prefix) = crate::formats::tf::checkpoint::locate(path) {
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

/// The generator of a TensorFlow checkpoint (`prefix` as [`crate::formats::tf::checkpoint::locate`]
/// finds it).
fn load_tf_generator<B: Backend>(
    prefix: &Path,
    direction: Direction,
    device: &B::Device,
) -> Result<LoadedGenerator<B>, WeightsError> {
    let (cfg, sd) = crate::formats::tf::checkpoint::read_generator(prefix, direction)?;
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

pub(crate) fn keys(path: &Path, cause: KeyError) -> WeightsError {
    WeightsError::Keys {
        path: path.to_path_buf(),
        cause,
    }
}
