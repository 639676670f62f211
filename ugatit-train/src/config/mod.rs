//! The training config: a TOML file with `[model]`, `[train]`, `[data]`, `[checkpoint]` and
//! `[log]` sections, every one optional, plus `--set section.key=value` overrides. Defaults are
//! the official UGATIT-pytorch ones; values are validated once, at load, naming the key.
//!
//! Paths (`data.root`, `train.init`) are made absolute at load: a relative one written in the
//! file is relative to the file's folder, one given with `--set` (or `--init`) to the current
//! folder, as any command-line path is. Bucket URLs (`s3://...`) are kept as they are.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ugatit_model::{ModelConfig, Precision};

/// A config problem, naming the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("--set {arg}: {message}")]
    Set { arg: String, message: String },
    #[error("{key} = {value} is out of range: {allowed}")]
    Range {
        key: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(transparent)]
    Model(#[from] ugatit_model::ConfigError),
}

/// Everything a run is configured by.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub data: DataConfig,
    pub checkpoint: CheckpointConfig,
    pub log: LogConfig,
    pub eval: EvalConfig,
}

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

impl Config {
    /// Reads `path`, applies `sets` (`section.key=value`), and validates. Relative paths are
    /// made absolute: against the file's folder if the file gives them, against the current
    /// folder if a `--set` does.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut cfg = Self::parse(path, &text, sets)?;
        let file_dir = path.parent().unwrap_or(Path::new(""));
        for (key, value) in [
            ("data.root", &mut cfg.data.root),
            ("train.init", &mut cfg.train.init),
            ("eval.features", &mut cfg.eval.features),
        ] {
            let from_cli = sets.iter().any(|s| set_key(s) == Some(key));
            if let Some(p) = value.as_mut() {
                *p = absolute(p, if from_cli { Path::new("") } else { file_dir }).map_err(
                    |cause| ConfigError::Read {
                        path: p.clone(),
                        cause,
                    },
                )?;
            }
        }
        Ok(cfg)
    }

    /// Parses TOML text (named `path` in errors) with overrides, and validates.
    pub fn parse(path: &Path, text: &str, sets: &[String]) -> Result<Self, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: one_line(e.message()),
        };
        let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        for arg in sets {
            apply_set(&mut table, arg)?;
        }
        let cfg: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: one_line(e.message()),
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The resolved config as TOML (what a run folder's `config.toml` holds).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        let t = &self.train;
        let check = |ok: bool, key, value: String, allowed| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Range {
                    key,
                    value,
                    allowed,
                })
            }
        };
        check(
            t.iterations >= 1,
            "train.iterations",
            t.iterations.to_string(),
            "at least 1",
        )?;
        check(
            (1..=4096).contains(&t.batch_size),
            "train.batch_size",
            t.batch_size.to_string(),
            "1 to 4096",
        )?;
        check(
            t.lr.is_finite() && t.lr > 0.0,
            "train.lr",
            t.lr.to_string(),
            "a positive number",
        )?;
        check(
            (0.0..1.0).contains(&t.beta1),
            "train.beta1",
            t.beta1.to_string(),
            "0 <= beta1 < 1",
        )?;
        check(
            (0.0..1.0).contains(&t.beta2),
            "train.beta2",
            t.beta2.to_string(),
            "0 <= beta2 < 1",
        )?;
        for (key, v) in [
            ("train.weight_decay", t.weight_decay),
            ("train.adv_weight", t.adv_weight),
            ("train.cycle_weight", t.cycle_weight),
            ("train.identity_weight", t.identity_weight),
            ("train.cam_weight", t.cam_weight),
        ] {
            check(
                v.is_finite() && v >= 0.0,
                key,
                v.to_string(),
                "a number >= 0",
            )?;
        }
        let w = self.data.workers;
        check(
            (1..=64).contains(&w),
            "data.workers",
            w.to_string(),
            "1 to 64",
        )?;
        let c = &self.checkpoint;
        check(
            c.every >= 1,
            "checkpoint.every",
            c.every.to_string(),
            "at least 1",
        )?;
        check(
            c.keep >= 1,
            "checkpoint.keep",
            c.keep.to_string(),
            "at least 1",
        )?;
        check(
            self.log.every >= 1,
            "log.every",
            self.log.every.to_string(),
            "at least 1",
        )?;
        let e = &self.eval;
        check(
            e.every == 0 || e.features.is_some(),
            "eval.every",
            e.every.to_string(),
            "0 unless eval.features names pytorch-fid's Inception weights",
        )?;
        check(
            e.images >= 2,
            "eval.images",
            e.images.to_string(),
            "at least 2",
        )?;
        check(
            e.kid_subsets >= 1,
            "eval.kid_subsets",
            e.kid_subsets.to_string(),
            "at least 1",
        )?;
        check(
            e.kid_subset_size >= 2,
            "eval.kid_subset_size",
            e.kid_subset_size.to_string(),
            "at least 2",
        )?;
        Ok(())
    }
}

/// `path` made absolute against `base` (itself against the current folder), without needing
/// it to exist; bucket URLs are kept.
pub fn absolute(path: &Path, base: &Path) -> std::io::Result<PathBuf> {
    if path.to_str().is_some_and(ugatit_store::bucket::is_url) {
        return Ok(path.to_path_buf());
    }
    std::path::absolute(base.join(path))
}

/// The `section.key` of a `--set section.key=value`.
fn set_key(arg: &str) -> Option<&str> {
    arg.split_once('=').map(|(key, _)| key.trim())
}

/// toml's messages can span lines; ours are one.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies one `section.key=value` to the parsed table. The key must exist in the config
/// (checked against the defaults, so a typo is named before any work); the value is read as a
/// TOML value, or as a string if it is not one (`data.root=/data/x`).
fn apply_set(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Set {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected section.key=value".into()))?;
    let (section, field) = key
        .trim()
        .split_once('.')
        .ok_or_else(|| err("expected section.key=value".into()))?;
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let known_fields = |s: &str| -> Option<Vec<String>> {
        let mut f: Vec<String> = match defaults.get(s) {
            Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => return None,
        };
        // Keys whose default is none, which TOML cannot write.
        for (section, key) in [("data", "root"), ("train", "init")] {
            if s == section && !f.iter().any(|k| k == key) {
                f.push(key.into());
            }
        }
        Some(f)
    };
    let Some(fields) = known_fields(section) else {
        return Err(err(format!(
            "unknown section [{section}] (sections: model, train, data, checkpoint, log)"
        )));
    };
    if !fields.iter().any(|f| f == field) {
        return Err(err(format!(
            "unknown key {section}.{field} (keys of [{section}]: {})",
            fields.join(", ")
        )));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => {
            t.insert(field.to_string(), value);
            Ok(())
        }
        _ => Err(err(format!("[{section}] is not a table in the config"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_is_off_by_default_and_needs_its_weights() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.eval, EvalConfig::default());
        assert_eq!(c.eval.every, 0);
        let e = parse("[eval]\nevery = 10\n", &[]).unwrap_err();
        assert!(e.starts_with("eval.every = 10 is out of range"), "{e}");
        let c = parse("[eval]\nevery = 10\nfeatures = \"i.pth\"\n", &[]).unwrap();
        assert_eq!(c.eval.features, Some(PathBuf::from("i.pth")));
        let e = parse("[eval]\nevrey = 10\n", &[]).unwrap_err();
        assert!(e.contains("evrey"), "{e}");
    }

    fn parse(text: &str, sets: &[&str]) -> Result<Config, String> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::parse(Path::new("c.toml"), text, &sets).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_file_is_the_official_defaults() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.train.cam_weight, 1000.0);
        assert_eq!(c.model.img_size, 256);
    }

    #[test]
    fn sets_override_and_typos_are_named() {
        let c = parse(
            "[train]\niterations = 10\n",
            &["train.iterations=20", "data.root=/x/y"],
        )
        .unwrap();
        assert_eq!(c.train.iterations, 20);
        assert_eq!(c.data.root, Some(PathBuf::from("/x/y")));
        let e = parse("", &["train.iteratons=5"]).unwrap_err();
        assert!(e.contains("unknown key train.iteratons"), "{e}");
        let e = parse("", &["trian.iterations=5"]).unwrap_err();
        assert!(e.contains("unknown section [trian]"), "{e}");
        let e = parse("", &["iterations"]).unwrap_err();
        assert!(e.contains("expected section.key=value"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = parse("[train]\nlearning_rate = 1\n", &[]).unwrap_err();
        assert!(
            e.starts_with("c.toml: unknown field `learning_rate`"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = parse("[train]\nlr = -1.0\n", &[]).unwrap_err();
        assert_eq!(e, "train.lr = -1 is out of range: a positive number");
        let e = parse("[model]\nimg_size = 64\n", &[]).unwrap_err();
        assert!(e.contains("model.img_size = 64 is too small"), "{e}");
        let e = parse("[train]\nprecision = \"f8\"\n", &[]).unwrap_err();
        assert_eq!(
            e,
            "c.toml: train.precision: unknown precision \"f8\": use f32, bf16 or f16"
        );
        let c = parse("", &["train.precision=bf16"]).unwrap();
        assert_eq!(c.train.precision, Precision::Bf16);
        let e = parse("[train]\nbatch_size = \"two\"\n", &[]).unwrap_err();
        assert!(
            e.contains("batch_size") || e.contains("invalid type"),
            "{e}"
        );
    }

    #[test]
    fn the_resolved_config_round_trips() {
        let c = parse("[model]\nlight = true\n[data]\nroot = \"/d\"\n", &[]).unwrap();
        assert_eq!(parse(&c.to_toml(), &[]).unwrap(), c);
    }

    #[test]
    fn relative_paths_follow_the_file_unless_the_command_line_gives_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[data]\nroot = \"data\"\n[train]\ninit = \"w.pt\"\n").unwrap();
        let c = Config::load(&file, &[]).unwrap();
        assert_eq!(c.data.root, Some(dir.path().join("data")));
        assert_eq!(c.train.init, Some(dir.path().join("w.pt")));
        // A --set value is relative to the current folder, as every command-line path is.
        let sets = [
            "data.root=elsewhere".to_string(),
            "train.init=s3://b/run".into(),
        ];
        let c = Config::load(&file, &sets).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.data.root, Some(cwd.join("elsewhere")));
        assert_eq!(c.train.init, Some(PathBuf::from("s3://b/run")));
        let c = Config::load(&file, &["data.root=/abs/data".to_string()]).unwrap();
        assert_eq!(c.data.root, Some(PathBuf::from("/abs/data")));
    }
}
