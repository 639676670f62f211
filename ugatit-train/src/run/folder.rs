//! The run folder's `config.toml`: the resolved config a new run writes and `resume` reads
//! back (with `--set` overrides), so a run continues with the settings it started with.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ugatit_store::checkpoint::RunDir;

use crate::config::Config;
use crate::data::source::{is_bucket, DataSourceError};

/// The resolved config a run folder keeps.
pub const CONFIG_FILE: &str = "config.toml";

/// Prepares a new run folder: refuses one with checkpoints, writes the resolved config (with
/// `data.root` made absolute, so the run does not depend on the folder it was started from).
pub fn prepare_new(run_dir: &Path, cfg: &mut Config) -> Result<()> {
    let run = RunDir::new(run_dir);
    if !run.checkpoints().unwrap_or_default().is_empty() {
        bail!(
            "{} already holds checkpoints: use `ugatit-train resume --run-dir {}`",
            run_dir.display(),
            run_dir.display()
        );
    }
    let root = cfg
        .data
        .root
        .clone()
        .context("data.root is not set: name the folder holding trainA and trainB")?;
    if !is_bucket(&root) {
        if cfg.data.toy_if_missing && !root.exists() {
            let n = crate::toy_data::write(&root, cfg.model.img_size as u32, cfg.train.seed)?;
            eprintln!(
                "wrote the toy data set ({n} images) into {}",
                root.display()
            );
        }
        if !root.exists() {
            return Err(DataSourceError::Missing { root }.into());
        }
        cfg.data.root = Some(
            std::fs::canonicalize(&root)
                .with_context(|| format!("data.root {}", root.display()))?,
        );
    }
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    write_config(run_dir, cfg)
}

/// Reads a run folder's config with `sets` applied; the model cannot change on resume. A
/// local `data.root` that does not exist on this machine is named, with how to point the run
/// elsewhere, before anything is written.
pub fn resumed_config(run_dir: &Path, sets: &[String]) -> Result<Config> {
    let path = run_dir.join(CONFIG_FILE);
    if !path.is_file() {
        bail!("{}: not a run folder (no {CONFIG_FILE})", run_dir.display());
    }
    let saved = Config::load(&path, &[])?;
    let cfg = Config::load(&path, sets)?;
    if cfg.model != saved.model {
        bail!("--set cannot change [model] on resume: the checkpoints hold that architecture");
    }
    if let Some(root) = &cfg.data.root {
        if !is_bucket(root) && !root.exists() {
            return Err(DataSourceError::MissingOnResume { root: root.clone() }.into());
        }
    }
    write_config(run_dir, &cfg)?;
    Ok(cfg)
}

fn write_config(run_dir: &Path, cfg: &Config) -> Result<()> {
    let path = run_dir.join(CONFIG_FILE);
    ugatit_store::atomic::write_atomic(&path, cfg.to_toml().as_bytes())?;
    Ok(())
}
