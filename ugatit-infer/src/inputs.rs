//! Command-line inputs to (input, output) pairs: files give `DIR/<stem>.<ext>`, folders give
//! `DIR/<path relative to the folder>` with the new extension (recursively), glob patterns
//! expand to files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ugatit_io::list_images;

/// The format results are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Png,
    Jpg,
    Webp,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpg => "jpg",
            Format::Webp => "webp",
        }
    }
}

/// One image to translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// Plans every output. Fails (naming them) when two inputs would write the same file or a
/// pattern matches nothing; a missing file is kept, to fail on its own when read.
pub fn plan(
    inputs: &[String],
    out_dir: &Path,
    format: Format,
    heatmaps: bool,
) -> Result<Vec<Job>, String> {
    let ext = format.extension();
    let mut jobs = Vec::new();
    for arg in inputs {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            let files = list_images(&path).map_err(|e| format!("{arg}: {e}"))?;
            for f in files {
                let rel = f.strip_prefix(&path).unwrap_or(&f).with_extension(ext);
                jobs.push(Job {
                    output: out_dir.join(rel),
                    input: f,
                });
            }
        } else if !path.exists() && arg.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(arg)
                .map_err(|e| format!("{arg}: bad pattern ({e})"))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                return Err(format!("{arg}: the pattern matches no file"));
            }
            jobs.extend(matches.into_iter().map(|f| file_job(f, out_dir, ext)));
        } else {
            jobs.push(file_job(path, out_dir, ext));
        }
    }
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for j in &jobs {
        let mut targets = vec![j.output.clone()];
        if heatmaps {
            targets.push(heatmap_path(&j.output));
        }
        for t in targets {
            if let Some(other) = seen.insert(t.clone(), &j.input) {
                return Err(format!(
                    "{} and {} would both be written to {}",
                    other.display(),
                    j.input.display(),
                    t.display()
                ));
            }
        }
    }
    Ok(jobs)
}

fn file_job(input: PathBuf, out_dir: &Path, ext: &str) -> Job {
    // Not `with_extension`: it would also cut `img.v2` to `img`.
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    Job {
        output: out_dir.join(format!("{stem}.{ext}")),
        input,
    }
}

/// Where `--heatmap` writes the heatmap of `output`: `<stem>_heatmap.<ext>` beside it.
pub fn heatmap_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = output
        .extension()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}_heatmap.{ext}"))
}

/// Why a planned output (and, with `heatmaps`, its heatmap) must not be written: it is an
/// input, or exists (without `overwrite`).
pub fn refusal(job: &Job, inputs: &[Job], overwrite: bool, heatmaps: bool) -> Option<String> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let mut targets = vec![job.output.clone()];
    if heatmaps {
        targets.push(heatmap_path(&job.output));
    }
    for target in targets {
        let Some(out) = canon(&target) else { continue };
        if inputs
            .iter()
            .any(|j| canon(&j.input).as_ref() == Some(&out))
        {
            return Some(format!(
                "{} is an input; refusing to write over it",
                target.display()
            ));
        }
        if !overwrite {
            return Some(format!(
                "{} exists (pass --overwrite to replace it)",
                target.display()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_keep_their_layout_and_files_their_stem() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        for f in ["a.JPG", "sub/b.png", "notes.txt"] {
            std::fs::write(src.join(f), b"x").unwrap();
        }
        let out = d.path().join("out");
        let jobs = plan(&[src.display().to_string()], &out, Format::Webp, false).unwrap();
        let outs: Vec<PathBuf> = jobs.iter().map(|j| j.output.clone()).collect();
        assert_eq!(outs, [out.join("a.webp"), out.join("sub/b.webp")]);
        let pattern = format!("{}/*.JPG", src.display());
        let jobs = plan(&[pattern], &out, Format::Png, false).unwrap();
        assert_eq!(jobs[0].output, out.join("a.png"));
        let e = plan(
            &[format!("{}/*.gif", src.display())],
            &out,
            Format::Png,
            false,
        )
        .unwrap_err();
        assert!(e.contains("matches no file"));
        // Dots inside a name are kept; only the extension changes.
        let dotted = src.join("img.v2.JPG");
        std::fs::write(&dotted, b"x").unwrap();
        let jobs = plan(&[dotted.display().to_string()], &out, Format::Png, false).unwrap();
        assert_eq!(jobs[0].output, out.join("img.v2.png"));
        // A heatmap may not land on another result.
        std::fs::write(src.join("a_heatmap.jpg"), b"x").unwrap();
        let both = [
            src.join("a.JPG").display().to_string(),
            src.join("a_heatmap.jpg").display().to_string(),
        ];
        assert!(plan(&both, &out, Format::Png, true)
            .unwrap_err()
            .contains("would both be written"));
        let twice = [
            src.join("a.JPG").display().to_string(),
            src.join("a.JPG").display().to_string(),
        ];
        assert!(plan(&twice, &out, Format::Png, false)
            .unwrap_err()
            .contains("would both be written"));
    }

    #[test]
    fn inputs_and_existing_outputs_are_protected() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("a.png");
        std::fs::write(&input, b"x").unwrap();
        let jobs = plan(&[input.display().to_string()], d.path(), Format::Png, false).unwrap();
        assert!(refusal(&jobs[0], &jobs, true, false)
            .unwrap()
            .contains("is an input"));
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("a.png"), b"old").unwrap();
        let jobs = plan(&[input.display().to_string()], &out, Format::Png, false).unwrap();
        assert!(refusal(&jobs[0], &jobs, false, false)
            .unwrap()
            .contains("--overwrite"));
        assert_eq!(refusal(&jobs[0], &jobs, true, false), None);
    }
}
