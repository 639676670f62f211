//! A loaded generator and the image size it translates at.

use std::path::Path;

use burn::prelude::*;
use image::{DynamicImage, RgbImage};
use ugatit_model::{load_generator, Direction, LoadedGenerator, ModelConfig, WeightsError};

use crate::preprocess::{to_image, to_tensor};

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

/// A generator ready to translate images of one size.
pub struct Translator<B: Backend> {
    loaded: LoadedGenerator<B>,
    size: usize,
    device: B::Device,
}

/// Why a translator could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Size(#[from] SizeError),
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
        })
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

    /// Translates one image (resized to `size() x size()`).
    pub fn translate(&self, image: &DynamicImage) -> RgbImage {
        let x = to_tensor::<B>(image, self.size, &self.device);
        to_image(self.loaded.generator.forward(x).image, 0)
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
