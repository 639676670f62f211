//! `metrics.jsonl`: one JSON object per logged step.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Appends metric lines to a run's `metrics.jsonl`.
pub struct MetricsFile {
    file: File,
    path: PathBuf,
}

impl MetricsFile {
    /// Opens `path` for appending, first dropping lines of steps after `resumed_step` (written
    /// after the checkpoint a resumed run starts from, so they will be written again).
    pub fn open(path: &Path, resumed_step: u64) -> std::io::Result<Self> {
        if path.exists() {
            let kept: Vec<String> = BufReader::new(File::open(path)?)
                .lines()
                .map_while(Result::ok)
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s <= resumed_step)
                })
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            std::fs::write(path, text)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line: `step` first, then the named values in order.
    pub fn write(&mut self, step: u64, values: &[(&str, f64)]) -> std::io::Result<()> {
        let mut obj = serde_json::Map::new();
        obj.insert("step".into(), step.into());
        for (k, v) in values {
            let n = serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into);
            obj.insert((*k).to_string(), n);
        }
        writeln!(self.file, "{}", serde_json::Value::Object(obj))
    }
}
