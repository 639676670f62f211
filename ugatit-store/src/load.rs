//! One entry point that recognises every model path: a bucket URL, a TensorFlow checkpoint, a
//! run folder (its newest verified checkpoint), a checkpoint folder, one of our safetensors
//! files or an official `.pt`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use ugatit_model::nets::{generator_from, network, split_networks};
use ugatit_model::params::TensorSource;
use ugatit_model::tf::{build as tf_build, scope as tf_scope, TfConfig};
use ugatit_model::{AnyGenerator, Direction, KeyError, ModelConfig, StateDict, Ugatit, Variant};

use crate::checkpoint::{RunDir, CHECKPOINT_FILE};
use crate::error::WeightsError;
use crate::formats::safetensors_file::describe;
use crate::formats::safetensors_reader::SafetensorsFile;
use crate::formats::{is_pytorch, pytorch, read_file, Contents, LoadedTensors};

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
            reason: "a TensorFlow U-GAT-IT checkpoint: its generators translate and export, but \
                     training from it is out of scope (its discriminators differ)"
                .into(),
        });
    }
    let (file, skipped) = resolve(path, Verify::All)?;
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
    let (file, skipped) = resolve(path, Verify::NetworksOnly)?;
    let found = if is_pytorch(&file)? {
        // Official `.pt` files are read whole by burn-store's pickle reader.
        let t = pytorch::read(&file)?;
        let own = match t.contents {
            Contents::Model(sd) => network(&sd, direction.generator_name()),
            Contents::Generator(sd) => sd,
        };
        let header = Header {
            config: t.config,
            img_size_known: t.img_size_known,
            direction: None,
            step: None,
            variant: Variant::Pytorch,
        };
        build_generator(&file, &header, &own, direction, device)?
    } else {
        // Our files (and plain safetensors) are read tensor by tensor: only this generator.
        let st = SafetensorsFile::open(&file)?;
        let d = describe(&st)?;
        let prefix = if d.is_model {
            format!("{}.", direction.generator_name())
        } else {
            String::new()
        };
        let header = Header {
            config: d.config,
            img_size_known: d.img_size_known,
            direction: d.direction,
            step: d.step,
            variant: d.variant,
        };
        build_generator(&file, &header, &st.network(&prefix), direction, device)?
    };
    Ok(LoadedGenerator { skipped, ..found })
}

/// What a generator is built with, besides its tensors.
struct Header {
    config: ModelConfig,
    img_size_known: bool,
    direction: Option<Direction>,
    step: Option<u64>,
    variant: Variant,
}

/// Builds the `direction` generator from its own tensors `own` (keys without prefix).
fn build_generator<B: Backend>(
    file: &Path,
    header: &Header,
    own: &dyn TensorSource,
    direction: Direction,
    device: &B::Device,
) -> Result<LoadedGenerator<B>, WeightsError> {
    if let Some(d) = header.direction {
        if d != direction {
            return Err(WeightsError::Unsupported {
                path: file.to_path_buf(),
                reason: format!(
                    "this generator translates {d}; it cannot translate {direction} \
                     (export the {direction} generator, or pass --direction {d})"
                ),
            });
        }
    }
    let name = direction.generator_name();
    if own.keys().is_empty() {
        return Err(WeightsError::not_ugatit(
            file,
            format!("it holds no {name} generator"),
        ));
    }
    let config = &header.config;
    let generator = match header.variant {
        Variant::Pytorch => AnyGenerator::Pytorch(Box::new(
            generator_from(config, own, name, device).map_err(|e| keys(file, e))?,
        )),
        Variant::Tf => {
            let cfg = TfConfig {
                ch: config.ch,
                n_res: config.n_res,
                light: config.light,
                img_size: (!config.light).then_some(config.img_size),
            };
            // Exports of a TF generator write its own tensors: keep them.
            let mut sd = StateDict::new();
            for key in own.keys() {
                let data = own.read(&key).map_err(|reason| {
                    keys(
                        file,
                        KeyError::Unreadable {
                            net: name.to_string(),
                            key: key.clone(),
                            reason,
                        },
                    )
                })?;
                sd.insert(key, data);
            }
            let g = tf_build(cfg, &sd, tf_scope(direction), device).map_err(|e| keys(file, e))?;
            AnyGenerator::Tf(Box::new(g), sd)
        }
    };
    Ok(LoadedGenerator {
        generator,
        config: header.config.clone(),
        img_size_known: header.img_size_known,
        direction,
        path: file.to_path_buf(),
        step: header.step,
        skipped: Vec::new(),
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

/// What of a run folder's checkpoints is checked against their manifests before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Every file (resuming reads the optimiser state too).
    All,
    /// The networks' file only (translating and exporting read nothing else).
    NetworksOnly,
}

/// A run folder resolves to its newest verified checkpoint's file (with the newer ones passed
/// over, as messages), a checkpoint folder to its file; anything else is taken as a file.
fn resolve(path: &Path, verify: Verify) -> Result<(PathBuf, Vec<String>), WeightsError> {
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
        let (found, bad) = match verify {
            Verify::All => run.latest_verified()?,
            Verify::NetworksOnly => run.latest_with_networks()?,
        };
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
