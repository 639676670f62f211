//! The sample grids of a run: every `log.sample_every` steps, the official grid (see
//! [`crate::sample`]) of a few fixed training images and, when the data set has `testA` and
//! `testB`, of test images, as PNG files and TensorBoard images.

use std::path::Path;

use anyhow::Result;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use ugatit_io::image_file::{list_images, read_rgb, DEFAULT_MAX_PIXELS};

use crate::config::Config;
use crate::data::{push_planar, transform};
use crate::log::EventWriter;
use crate::sample::grid;
use crate::step::TrainState;

/// Images a sample grid shows per set.
const SAMPLE_COUNT: usize = 5;

/// The fixed images the grids show: the first few of each folder, in sorted order, resized
/// without augmentation (drawn apart from the training stream, so sampling never changes it).
pub(super) struct Samples<B: Backend> {
    every: u64,
    sets: Vec<(&'static str, Tensor<B, 4>, Tensor<B, 4>)>,
}

impl<B: AutodiffBackend> Samples<B> {
    /// Reads the sample images under `root` (none when `log.sample_every` is 0). A set whose
    /// folders are missing or hold no readable image is left out with one warning naming why.
    pub(super) fn load(root: &Path, cfg: &Config, device: &B::Device) -> Self {
        let every = cfg.log.sample_every;
        let mut sets = Vec::new();
        if every == 0 {
            return Self { every, sets };
        }
        let size = cfg.model.img_size as u32;
        let first = |folder: &str| first_images::<B>(&root.join(folder), size, device);
        for (name, a, b) in [("train", "trainA", "trainB"), ("test", "testA", "testB")] {
            let why = match (first(a), first(b)) {
                (Ok(a), Ok(b)) => {
                    sets.push((name, a, b));
                    continue;
                }
                (Err(why), Ok(_)) | (Ok(_), Err(why)) => why,
                (Err(x), Err(y)) => format!("{x}; {y}"),
            };
            eprintln!("warning: no {name} sample grids: {why}");
        }
        Self { every, sets }
    }

    /// Whether step `step` writes grids.
    pub(super) fn due(&self, step: u64) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    /// Writes `samples/<set>_<a2b|b2a>_<step>.png` and their TensorBoard images.
    pub(super) fn write(
        &self,
        state: &TrainState<B>,
        run_dir: &Path,
        step: u64,
        mut events: Option<&mut EventWriter>,
    ) -> Result<()> {
        let dir = run_dir.join("samples");
        std::fs::create_dir_all(&dir)?;
        let gens = state.gens.valid();
        for (name, a, b) in &self.sets {
            for (dir_name, fwd, bwd, real) in [
                ("a2b", &gens.a2b, &gens.b2a, a.clone().inner()),
                ("b2a", &gens.b2a, &gens.a2b, b.clone().inner()),
            ] {
                let img = grid(fwd, bwd, real);
                let path = dir.join(format!("{name}_{dir_name}_{step:08}.png"));
                let mut png = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
                // Whole or not at all: the bucket mirror may upload the folder at any moment.
                ugatit_store::atomic::write_atomic(&path, &png)?;
                if let Some(ev) = events.as_deref_mut() {
                    ev.image(
                        &format!("samples/{name}_{dir_name}"),
                        step,
                        &png,
                        img.height(),
                        img.width(),
                    )?;
                }
            }
        }
        if let Some(ev) = events {
            ev.flush()?;
        }
        Ok(())
    }
}

/// The first [`SAMPLE_COUNT`] readable images of `dir` as `[n, 3, size, size]`, or why there
/// are none.
fn first_images<B: Backend>(
    dir: &Path,
    size: u32,
    device: &B::Device,
) -> Result<Tensor<B, 4>, String> {
    let files = list_images(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", dir.display()),
        _ => format!("{} cannot be read ({e})", dir.display()),
    })?;
    let mut v = Vec::new();
    let mut n = 0;
    for f in &files {
        if n == SAMPLE_COUNT {
            break;
        }
        if let Ok(img) = read_rgb(f, DEFAULT_MAX_PIXELS) {
            let img = transform(&img, size, false, &mut ugatit_model::init::SplitMix64(0));
            push_planar(&img, &mut v);
            n += 1;
        }
    }
    if n == 0 {
        return Err(if files.is_empty() {
            format!("{} holds no images", dir.display())
        } else {
            format!(
                "none of the {} images in {} can be read",
                files.len(),
                dir.display()
            )
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(v, [n, 3, size as usize, size as usize]),
        device,
    ))
}
