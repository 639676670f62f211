//! One parallel pass over image files, shared by `data check` and `data prepare`: each file is
//! read once, hashed (exact duplicates are files with the same SHA-256) and handed to a per-file
//! function on rayon's threads, with a progress bar on a terminal for large folders. Results
//! come back in the files' order, so reports and outputs never depend on thread timing.

use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use ugatit_io::image_file::is_image_path;

/// A file's SHA-256.
pub type Hash = [u8; 32];

/// Folders with more files than this get a progress bar (when stderr is a terminal): smaller
/// ones finish before a bar would tell anything.
pub const PROGRESS_FROM: usize = 100;

/// One file's outcome: its hash (`None` if it could not be read) and what the work made of it,
/// or why it is unusable.
pub struct Scanned<T> {
    pub path: PathBuf,
    pub hash: Option<Hash>,
    pub result: Result<T, String>,
}

/// The first `chars` lowercase hex digits of `hash`.
pub fn hex(hash: &Hash, chars: usize) -> String {
    let mut s: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(chars);
    s
}

/// The files under `dir`, recursively, sorted: those with an image extension (what training
/// reads), and the others, which training silently ignores (hidden files left out).
pub fn walk(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut images, mut others) = (Vec::new(), Vec::new());
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_dir() {
                pending.push(path);
            } else if is_image_path(&path) {
                images.push(path);
            } else if !hidden {
                others.push(path);
            }
        }
    }
    images.sort();
    others.sort();
    Ok((images, others))
}

/// Reads, hashes and runs `work` on every file in parallel. A decoder that panics on a hostile
/// file fails that file ("the decoder crashed"), not the pass.
pub fn scan<T, F>(label: &str, files: &[PathBuf], work: F) -> Vec<Scanned<T>>
where
    T: Send,
    F: Fn(&Path, &[u8]) -> Result<T, String> + Sync,
{
    let bar = (files.len() > PROGRESS_FROM && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_string());
        bar
    });
    let results = files
        .par_iter()
        .map(|path| {
            let scanned = match std::fs::read(path) {
                Ok(bytes) => Scanned {
                    path: path.clone(),
                    hash: Some(Sha256::digest(&bytes).into()),
                    result: catch_unwind(AssertUnwindSafe(|| work(path, &bytes)))
                        .unwrap_or_else(|_| Err("the decoder crashed on this file".into())),
                },
                Err(e) => Scanned {
                    path: path.clone(),
                    hash: None,
                    result: Err(format!("cannot read: {e}")),
                },
            };
            if let Some(b) = &bar {
                b.inc(1);
            }
            scanned
        })
        .collect();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_in_order_and_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["a.png", "b.png", "c.png"]
            .iter()
            .map(|n| dir.path().join(n))
            .collect();
        std::fs::write(&files[0], b"same").unwrap();
        std::fs::write(&files[1], b"same").unwrap();
        let out = scan("t", &files, |p, bytes| {
            if bytes == b"same" && p.ends_with("b.png") {
                panic!("hostile");
            }
            Ok(bytes.len())
        });
        assert_eq!(out[0].result, Ok(4));
        assert_eq!(out[0].hash, out[1].hash);
        assert_eq!(
            out[1].result,
            Err("the decoder crashed on this file".to_string())
        );
        assert!(out[2].hash.is_none() && out[2].result.is_err());
        assert_eq!(hex(&out[0].hash.unwrap(), 5).len(), 5);
    }
}
