//! The training config: a TOML file with `[model]`, `[train]`, `[data]`, `[checkpoint]`, `[log]`
//! and `[eval]` sections, every one optional, plus `--set section.key=value` overrides. Defaults
//! are the official UGATIT-pytorch ones; values are validated once, at load, naming the key.
//! Which keys exist, which are paths and what range each keeps: one table, [`keys::KEYS`].
//!
//! Paths (`data.root`, `train.init`, `eval.features`) are made absolute at load: a relative one
//! written in the file is relative to the file's folder, one given with `--set` (or `--init`) to
//! the current folder, as any command-line path is. Bucket URLs (`s3://...`) are kept as they are.

pub mod keys;
mod sections;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ugatit_model::ModelConfig;

use keys::{Rule, KEYS};
pub use sections::{CheckpointConfig, DataConfig, EvalConfig, LogConfig, TrainConfig};

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
        for key in KEYS {
            let Rule::Path(field) = key.rule else {
                continue;
            };
            let from_cli = sets.iter().any(|s| set_key(s) == Some(key.name));
            if let Some(p) = field(&mut cfg).as_mut() {
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
        let file: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let mut table = file.clone();
        for arg in sets {
            apply_set(&mut table, arg)?;
        }
        let cfg = match Config::deserialize(toml::Value::Table(table)) {
            Ok(cfg) => cfg,
            Err(e) => {
                // serde's message names the type, not the key: name the --set that brought the
                // bad value if one did, else the file.
                return Err(culprit(file, sets).unwrap_or(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: one_line(e.message()),
                }));
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The resolved config as TOML (what a run folder's `config.toml` holds).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every value, naming the first bad key (in the table's order).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        for key in KEYS {
            if let Rule::Range(allowed, check) = key.rule {
                let (value, ok) = check(self);
                if !ok {
                    return Err(ConfigError::Range {
                        key: key.name,
                        value,
                        allowed,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The first `--set` after which the file's table no longer reads as a config (a value of the
/// wrong type), as the error naming it.
fn culprit(mut table: toml::Table, sets: &[String]) -> Option<ConfigError> {
    for arg in sets {
        apply_set(&mut table, arg).ok()?;
        if let Err(e) = Config::deserialize(toml::Value::Table(table.clone())) {
            return Some(ConfigError::Set {
                arg: arg.clone(),
                message: one_line(e.message()),
            });
        }
    }
    None
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
    let key = key.trim();
    if keys::find(key).is_none() {
        let known = keys::keys_of(section);
        return Err(err(if known.is_empty() {
            format!(
                "unknown section [{section}] (sections: {})",
                keys::sections().join(", ")
            )
        } else {
            format!(
                "unknown key {key} (keys of [{section}]: {})",
                known.join(", ")
            )
        }));
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

    /// A value each key takes and one it refuses (every key of the table has both).
    const EXAMPLES: &[(&str, &str, &str)] = &[
        ("model.img_size", "128", "64"),
        ("model.ch", "32", "0"),
        ("model.n_res", "2", "0"),
        ("model.light", "true", "maybe"),
        ("model.n_dis_global", "6", "2"),
        ("model.n_dis_local", "4", "13"),
        ("train.iterations", "10", "0"),
        ("train.batch_size", "4", "0"),
        ("train.lr", "2e-4", "-1"),
        ("train.beta1", "0.9", "1"),
        ("train.beta2", "0.99", "1.5"),
        ("train.weight_decay", "0", "-1e-4"),
        ("train.decay_lr", "false", "maybe"),
        ("train.adv_weight", "2", "-1"),
        ("train.cycle_weight", "5", "nan"),
        ("train.identity_weight", "5", "-5"),
        ("train.cam_weight", "100", "-1"),
        ("train.seed", "7", "-1"),
        ("train.augment", "false", "maybe"),
        ("train.init", "weights.pt", "3"),
        ("train.precision", "f16", "f8"),
        ("data.root", "/data/selfie2anime", "[1]"),
        ("data.workers", "4", "0"),
        ("data.toy_if_missing", "true", "maybe"),
        ("checkpoint.every", "1000", "0"),
        ("checkpoint.keep", "5", "0"),
        ("checkpoint.milestone_every", "10000", "-1"),
        ("log.every", "10", "0"),
        ("log.sample_every", "0", "-1"),
        ("log.tensorboard", "false", "maybe"),
        ("eval.every", "0", "10"),
        ("eval.features", "pt_inception.pth", "3"),
        ("eval.images", "50", "1"),
        ("eval.kid_subsets", "10", "0"),
        ("eval.kid_subset_size", "100", "1"),
    ];

    #[test]
    fn the_table_lists_every_key_of_the_defaults_and_the_readme_documents_it() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut written: Vec<String> = Vec::new();
        for (section, fields) in &defaults {
            for field in fields.as_table().unwrap().keys() {
                written.push(format!("{section}.{field}"));
            }
        }
        let table: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        for key in &written {
            assert!(
                table.contains(&key.as_str()),
                "{key} is not in config::keys::KEYS"
            );
        }
        // Only the paths, whose default is none (TOML cannot write it), are in the table alone.
        let unwritten: Vec<&str> = KEYS
            .iter()
            .filter(|k| !written.iter().any(|w| w == k.name))
            .map(|k| k.name)
            .collect();
        assert_eq!(unwritten, ["train.init", "data.root", "eval.features"]);
        assert!(KEYS
            .iter()
            .all(|k| matches!(k.rule, Rule::Path(_)) == unwritten.contains(&k.name)));

        // The README's table of sections and keys documents exactly these.
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for line in readme.lines().filter(|l| l.starts_with("| `[")) {
            let mut cells = line.split('|').skip(1);
            let section = cells.next().unwrap().trim().trim_matches(['`', '[', ']']);
            let keys = cells.next().unwrap();
            // A key is a `name` followed by its default in parentheses.
            for (i, _) in keys.match_indices("` (") {
                let name = &keys[..i];
                let name = &name[name.rfind('`').unwrap() + 1..];
                documented.push(format!("{section}.{name}"));
            }
        }
        assert_eq!(documented, table);
    }

    #[test]
    fn every_key_takes_a_set_and_a_bad_value_of_each_is_refused_naming_the_key() {
        assert_eq!(EXAMPLES.len(), KEYS.len());
        for (key, (name, good, bad)) in KEYS.iter().zip(EXAMPLES) {
            assert_eq!(key.name, *name);
            let set = format!("{name}={good}");
            if let Err(e) = parse("", &[&set]) {
                panic!("--set {set}: {e}");
            }
            let set = format!("{name}={bad}");
            let e = parse("", &[&set]).unwrap_err();
            assert!(e.contains(name), "--set {set}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        // A type error names the --set that brought it, not the file, also after good ones.
        let e = parse("", &["train.lr=0.1", "train.decay_lr=maybe"]).unwrap_err();
        assert!(e.starts_with("--set train.decay_lr=maybe: "), "{e}");
    }

    #[test]
    fn a_set_path_is_resolved_against_the_current_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "").unwrap();
        let sets = ["eval.features=w/inception.pth".to_string()];
        let c = Config::load(&file, &sets).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.eval.features, Some(cwd.join("w/inception.pth")));
        let e = parse("", &["eval.nope=1"]).unwrap_err();
        assert_eq!(
            e,
            "--set eval.nope=1: unknown key eval.nope (keys of [eval]: every, features, images, \
             kid_subsets, kid_subset_size)"
        );
        let e = parse("", &["evaluation.every=1"]).unwrap_err();
        assert!(
            e.ends_with("(sections: model, train, data, checkpoint, log, eval)"),
            "{e}"
        );
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
        assert_eq!(c.train.precision, ugatit_model::Precision::Bf16);
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
