//! The test-set pass that needs no feature network: every source test image translated (kept
//! as the 8-bit image a saved result would be, for the feature network), its cycle back to the
//! source domain, and every target test image through the same generator (identity), with the
//! official L1 losses (`L1Loss()`: the mean absolute difference over all pixels and channels of
//! the [-1, 1] images) averaged over the test set.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use ugatit_io::image_file::{list_images, read_rgb, DEFAULT_MAX_PIXELS};
use ugatit_io::pixels::to_image;

use super::EvalError;
use crate::data::{push_planar, transform};

/// A domain's test images, resized to the model's size (the official `test_transform`).
pub struct TestImages {
    pub dir: PathBuf,
    pub images: Vec<RgbImage>,
    /// Files that could not be read, each with its reason.
    pub skipped: Vec<String>,
}

impl TestImages {
    /// The images of `dir` (sorted, recursively), at most `limit`, resized to `size`.
    pub fn read(dir: &Path, size: u32, limit: Option<usize>) -> Result<Self, EvalError> {
        let bad = |message: String| EvalError::Images {
            dir: dir.to_path_buf(),
            message,
        };
        let files = list_images(dir).map_err(|e| bad(format!("cannot be listed ({e})")))?;
        let mut images = Vec::new();
        let mut skipped = Vec::new();
        for file in &files {
            if limit.is_some_and(|l| images.len() >= l) {
                break;
            }
            match read_rgb(file, DEFAULT_MAX_PIXELS) {
                Ok(img) => images.push(transform(
                    &img,
                    size,
                    false,
                    &mut ugatit_model::init::SplitMix64(0),
                )),
                Err(e) => skipped.push(format!("{}: {e}", file.display())),
            }
        }
        if images.is_empty() {
            return Err(bad(if files.is_empty() {
                "holds no images".into()
            } else {
                format!("none of its {} images can be read", files.len())
            }));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            images,
            skipped,
        })
    }
}

/// What the pass gives.
pub struct Translated {
    /// The translations of the source images, as 8-bit images.
    pub images: Vec<RgbImage>,
    /// Mean L1 between the source images and their cycles (`None` without the reverse
    /// generator).
    pub cycle_l1: Option<f64>,
    /// Mean L1 between the target images and their translations by the same generator.
    pub identity_l1: f64,
}

/// A generator's translation: `[batch, 3, h, w]` in [-1, 1] to the same.
pub type Translate<'a, B> = &'a dyn Fn(Tensor<B, 4>) -> Tensor<B, 4>;

/// Translates `source` with `forward` (and back with `reverse`, if given), and `target` with
/// `forward`, `batch` images a pass.
pub fn translate<B: Backend>(
    forward: Translate<B>,
    reverse: Option<Translate<B>>,
    source: &[RgbImage],
    target: &[RgbImage],
    batch: usize,
    device: &B::Device,
) -> Translated {
    let mut cycle = L1::default();
    let images = translate_images(
        |x: Tensor<B, 4>| {
            let fake = forward(x.clone());
            if let Some(reverse) = reverse {
                cycle.add(reverse(fake.clone()), x);
            }
            fake
        },
        source,
        batch,
        device,
    );
    let mut identity = L1::default();
    for chunk in target.chunks(batch.max(1)) {
        let y = tensor::<B>(chunk, device);
        identity.add(forward(y.clone()), y);
    }
    Translated {
        images,
        cycle_l1: reverse.map(|_| cycle.mean()),
        identity_l1: identity.mean(),
    }
}

/// The translations of `images` by `forward`, as 8-bit images, `batch` a pass.
pub fn translate_images<B: Backend>(
    mut forward: impl FnMut(Tensor<B, 4>) -> Tensor<B, 4>,
    images: &[RgbImage],
    batch: usize,
    device: &B::Device,
) -> Vec<RgbImage> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let fake = forward(tensor::<B>(chunk, device));
        for i in 0..chunk.len() {
            out.push(to_image(fake.clone(), i));
        }
    }
    out
}

/// Equal-size 8-bit images as a `[n, 3, h, w]` tensor in [-1, 1].
fn tensor<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = images[0].dimensions();
    let mut planar = Vec::with_capacity(images.len() * 3 * (w * h) as usize);
    for image in images {
        push_planar(image, &mut planar);
    }
    Tensor::from_data(
        TensorData::new(planar, [images.len(), 3, h as usize, w as usize]),
        device,
    )
}

/// A running mean absolute difference over every element of every batch.
#[derive(Default)]
struct L1 {
    sum: f64,
    count: usize,
}

impl L1 {
    fn add<B: Backend>(&mut self, a: Tensor<B, 4>, b: Tensor<B, 4>) {
        self.count += a.dims().iter().product::<usize>();
        self.sum += (a - b).abs().sum().into_scalar().elem::<f64>();
    }

    fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }
}
