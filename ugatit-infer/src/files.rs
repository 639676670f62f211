//! Translating files: the loop `ugatit-infer translate` runs over the jobs [`crate::inputs::plan`]
//! made. Each input is checked ([`crate::inputs::refusal`]), read, translated in batches and
//! written with its heatmap; a bad file is reported and the rest go on. A library function, so
//! the service and the Python package can translate folders as the CLI does.

use std::error::Error;
use std::path::PathBuf;

use burn::prelude::*;
use image::RgbImage;
use ugatit_io::read_rgb;

use crate::inputs::{heatmap_path, refusal, Job};
use crate::{Options, Output, Translator};

/// How [`translate_files`] treats the files.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Images per forward pass.
    pub batch: usize,
    /// Replace existing results (inputs are never written over).
    pub overwrite: bool,
    /// Refuse images larger than this many pixels, before decoding them.
    pub max_pixels: u64,
    /// Crop, size and heatmap of each image.
    pub image: Options,
}

/// What [`translate_files`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub done: usize,
    pub failed: usize,
    /// Results of inputs that were not square and were stretched to the model's square.
    pub stretched: usize,
}

/// A result that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}", path.display())]
pub struct WriteError {
    what: &'static str,
    path: PathBuf,
    #[source]
    cause: Box<dyn Error + Send + Sync>,
}

/// Translates every job in batches of `options.batch`. `report(job, message)` hears of each job
/// that failed (refused, unreadable, untranslatable or unwritable: one line, the causes joined
/// with ": "), `progress(n)` of each batch of `n` jobs finished.
pub fn translate_files<B: Backend>(
    translator: &Translator<B>,
    jobs: &[Job],
    options: &FileOptions,
    mut report: impl FnMut(&Job, &str),
    mut progress: impl FnMut(usize),
) -> Summary {
    let mut summary = Summary::default();
    for chunk in jobs.chunks(options.batch.max(1)) {
        let mut ready: Vec<(&Job, RgbImage)> = Vec::new();
        for job in chunk {
            if let Some(why) = refusal(job, jobs, options.overwrite, options.image.heatmap) {
                report(job, &why);
                summary.failed += 1;
                continue;
            }
            match read_rgb(&job.input, options.max_pixels) {
                Ok(img) => ready.push((job, img)),
                Err(e) => {
                    report(job, &e.to_string());
                    summary.failed += 1;
                }
            }
        }
        let images: Vec<&RgbImage> = ready.iter().map(|(_, img)| img).collect();
        let results = translator.translate_batch(&images, &options.image);
        for ((job, _), result) in ready.iter().zip(results) {
            let written = match result {
                Ok(out) => {
                    summary.stretched += usize::from(out.stretched);
                    write(job, &out).map_err(|e| chain(&e))
                }
                Err(e) => Err(chain(&e)),
            };
            match written {
                Ok(()) => summary.done += 1,
                Err(message) => {
                    report(job, &message);
                    summary.failed += 1;
                }
            }
        }
        progress(chunk.len());
    }
    summary
}

/// Writes a result (and its heatmap), creating the output's folder.
pub fn write(job: &Job, out: &Output) -> Result<(), WriteError> {
    let failed = |what, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |cause: Box<dyn Error + Send + Sync>| WriteError { what, path, cause }
    };
    if let Some(dir) = job.output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed("create", dir)(e.into()))?;
    }
    out.image
        .save(&job.output)
        .map_err(|e| failed("write", &job.output)(e.into()))?;
    if let Some(h) = &out.heatmap {
        let path = heatmap_path(&job.output);
        h.save(&path)
            .map_err(|e| failed("write", &path)(e.into()))?;
    }
    Ok(())
}

/// An error and its causes on one line, joined with ": ".
fn chain(e: &(dyn Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
