//! A loaded generator and the image size it translates at: the library API for servers.
//!
//! ```no_run
//! # use ugatit_infer::{Translator, Options, Crop};
//! # use ugatit_model::{Cpu, Direction};
//! let t = Translator::<Cpu>::load("run/".as_ref(), Direction::A2B, None, &Default::default())?;
//! let selfie = ugatit_io::read_rgb("me.jpg".as_ref(), 50_000_000)?;
//! let options = Options { crop: Crop::Auto { fallback_center: true }, ..Default::default() };
//! let anime = t.translate(&selfie, &options)?;
//! anime.image.save("me-anime.png")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops;
use image::RgbImage;
use ugatit_io::pixels::{heatmap_image, to_image, RESIZE_FILTER};
use ugatit_model::{Direction, GeneratorOutput, ModelConfig, Precision};
use ugatit_store::{load_generator, LoadedGenerator, WeightsError};

use crate::crop::{Crop, CropError, Region};
use crate::face::FaceFinder;
use crate::preprocess::push_region;

/// A size the model cannot translate at.
#[derive(Debug, thiserror::Error)]
pub enum SizeError {
    #[error(
        "--size {asked} contradicts the model: a full generator only translates at the \
         {trained}x{trained} it was built for"
    )]
    FullModel { asked: usize, trained: usize },
    #[error("--size {0} must be a multiple of 4, at least 8")]
    Invalid(usize),
}

/// Why a translator could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Size(#[from] SizeError),
}

/// How to translate one image.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub crop: Crop,
    /// Scale the result back to the crop's size instead of img_size.
    pub keep_size: bool,
    /// Also render the CAM heatmap (jet colours, same size as the result).
    pub heatmap: bool,
}

/// One translated image.
#[derive(Debug, Clone)]
pub struct Output {
    pub image: RgbImage,
    pub heatmap: Option<RgbImage>,
    /// The region of the input that was translated.
    pub region: Region,
    /// The region was not square, so it was stretched to the model's square.
    pub stretched: bool,
}

/// A generator ready to translate images of one size.
pub struct Translator<B: Backend> {
    loaded: LoadedGenerator<B>,
    size: usize,
    device: B::Device,
    faces: FaceFinder,
    precision: Precision,
}

impl<B: Backend> Translator<B> {
    /// Loads the `direction` generator from `model` (a run folder, checkpoint, generator file
    /// or official `.pt`). `size` defaults to the model's img_size; a light generator from an
    /// official `.pt`, whose shapes do not fix it, defaults to 256.
    pub fn load(
        model: &Path,
        direction: Direction,
        size: Option<usize>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let loaded = load_generator::<B>(model, direction, device)?;
        let size = choose_size(&loaded.config, size)?;
        Ok(Self {
            loaded,
            size,
            device: device.clone(),
            faces: FaceFinder::default(),
            precision: Precision::F32,
        })
    }

    /// Runs the generator's convolutions and linear layers in `precision` (weights stay
    /// float32; see [`ugatit_model::precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The side of the square images the generator sees.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn config(&self) -> &ModelConfig {
        &self.loaded.config
    }

    /// Damaged checkpoints of a run folder that were passed over for an older one.
    pub fn skipped_checkpoints(&self) -> &[String] {
        &self.loaded.skipped
    }

    /// The generator on `[batch, 3, size, size]` images in [-1, 1].
    pub fn forward(&self, x: Tensor<B, 4>) -> GeneratorOutput<B> {
        let _precision = self.precision.enter();
        self.loaded.generator.forward(x)
    }

    /// Translates one image.
    pub fn translate(&self, image: &RgbImage, options: &Options) -> Result<Output, CropError> {
        self.translate_batch(&[image], options).remove(0)
    }

    /// Translates several images in one forward pass (the same results as one by one, to
    /// float rounding: every normalisation in the generator is per image). An image whose crop
    /// fails gets its error; the others are still translated.
    pub fn translate_batch(
        &self,
        images: &[&RgbImage],
        options: &Options,
    ) -> Vec<Result<Output, CropError>> {
        let regions: Vec<Result<Region, CropError>> = images
            .iter()
            .map(|img| options.crop.region(img, &self.faces))
            .collect();
        let s = self.size as u32;
        let mut planar = Vec::new();
        let mut used = Vec::new();
        for (i, r) in regions.iter().enumerate() {
            if let Ok(r) = r {
                push_region(images[i], *r, s, &mut planar);
                used.push(i);
            }
        }
        let mut outputs: Vec<Option<Output>> = vec![None; images.len()];
        if !used.is_empty() {
            let x = Tensor::<B, 4>::from_data(
                TensorData::new(planar, [used.len(), 3, self.size, self.size]),
                &self.device,
            );
            let out = self.forward(x);
            let [_, _, hh, hw] = out.heatmap.dims();
            let heat = options.heatmap.then(|| {
                out.heatmap
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap_or_default()
            });
            for (k, &i) in used.iter().enumerate() {
                let Ok(region) = regions[i] else { continue };
                let (ow, oh) = if options.keep_size {
                    (region.width, region.height)
                } else {
                    (s, s)
                };
                let mut image = to_image(out.image.clone(), k);
                if (ow, oh) != (s, s) {
                    image = imageops::resize(&image, ow, oh, RESIZE_FILTER);
                }
                let heatmap = heat.as_ref().map(|h| {
                    heatmap_image(
                        &h[k * hh * hw..(k + 1) * hh * hw],
                        hw as u32,
                        hh as u32,
                        ow,
                        oh,
                    )
                });
                outputs[i] = Some(Output {
                    image,
                    heatmap,
                    region,
                    stretched: region.width != region.height,
                });
            }
        }
        regions
            .into_iter()
            .zip(outputs)
            .map(|(r, o)| match (r, o) {
                (Ok(_), Some(o)) => Ok(o),
                (Err(e), _) => Err(e),
                (Ok(_), None) => unreachable!("every cropped image was translated"),
            })
            .collect()
    }
}

/// The size to translate at: any multiple of 4 for a light generator, the trained size for a
/// full one (its MLP is sized for it).
fn choose_size(config: &ModelConfig, asked: Option<usize>) -> Result<usize, SizeError> {
    match asked {
        Some(s) if s < 8 || !s.is_multiple_of(4) => Err(SizeError::Invalid(s)),
        Some(s) if !config.light && s != config.img_size => Err(SizeError::FullModel {
            asked: s,
            trained: config.img_size,
        }),
        Some(s) => Ok(s),
        None => Ok(config.img_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_models_fix_the_size_and_light_ones_do_not() {
        let full = ModelConfig {
            img_size: 96,
            ..Default::default()
        };
        assert_eq!(choose_size(&full, None).unwrap(), 96);
        assert_eq!(choose_size(&full, Some(96)).unwrap(), 96);
        let e = choose_size(&full, Some(128)).unwrap_err().to_string();
        assert!(e.contains("--size 128 contradicts the model"), "{e}");
        let light = ModelConfig {
            light: true,
            ..Default::default()
        };
        assert_eq!(choose_size(&light, None).unwrap(), 256);
        assert_eq!(choose_size(&light, Some(64)).unwrap(), 64);
        assert!(choose_size(&light, Some(66)).is_err());
    }
}
