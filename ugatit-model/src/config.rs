//! The model's hyper-parameters, with the official UGATIT-pytorch defaults.

use serde::{Deserialize, Serialize};

/// Architecture of a U-GAT-IT model (the `[model]` section of a config file).
///
/// Defaults are the official code's: `--img_size 256 --ch 64 --n_res 4`, full (not light) mode,
/// a 7-layer global and a 5-layer local discriminator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Side of the square images the model trains on (H = W = img_size).
    pub img_size: usize,
    /// Base channel count (`ngf` of the generators, `ndf` of the discriminators).
    pub ch: usize,
    /// Residual blocks in the encoder and AdaILN blocks in the decoder.
    pub n_res: usize,
    /// Light mode: the gamma/beta MLP sees globally averaged features instead of the whole map.
    pub light: bool,
    /// Layers of the global discriminators (official `n_layers=7`).
    pub n_dis_global: usize,
    /// Layers of the local discriminators (official `n_layers=5`).
    pub n_dis_local: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            img_size: 256,
            ch: 64,
            n_res: 4,
            light: false,
            n_dis_global: 7,
            n_dis_local: 5,
        }
    }
}

/// A model configuration value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("model.{key} = {value} is out of range: {allowed}")]
    OutOfRange {
        key: &'static str,
        value: usize,
        allowed: String,
    },
    #[error(
        "model.img_size = {img_size} is too small for these discriminators \
         (global {n_dis_global} layers, local {n_dis_local}): the minimum is {min}"
    )]
    ImageTooSmall {
        img_size: usize,
        n_dis_global: usize,
        n_dis_local: usize,
        min: usize,
    },
}

impl ModelConfig {
    /// Smallest image side a discriminator of `n_layers` layers accepts.
    ///
    /// The official discriminator has `n_layers - 2` stride-2 4x4 convolutions after a reflect
    /// pad of 1 (each floors the side to half), then two stride-1 ones (each removes one pixel),
    /// so its patch map is `floor(s / 2^(n-2)) - 2` wide and must be at least 1.
    pub fn min_size_for_discriminator(n_layers: usize) -> usize {
        3 << n_layers.saturating_sub(2)
    }

    /// Smallest valid `img_size` for this configuration: divisible by 4, at least 8 (so the
    /// instance statistics at H/4 have more than one pixel), and large enough for both
    /// discriminators.
    pub fn min_img_size(&self) -> usize {
        let need = Self::min_size_for_discriminator(self.n_dis_global)
            .max(Self::min_size_for_discriminator(self.n_dis_local))
            .max(8);
        need.div_ceil(4) * 4
    }

    /// Checks what a generator alone needs (a generator file has no discriminators): `ch`,
    /// `n_res`, and `img_size` a multiple of 4, at least 8.
    pub fn validate_generator(&self) -> Result<(), ConfigError> {
        let generator_only = ModelConfig {
            n_dis_global: 3,
            n_dis_local: 3,
            ..self.clone()
        };
        generator_only.validate()
    }

    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |key, value: usize, lo: usize, hi: usize| {
            if value < lo || value > hi {
                Err(ConfigError::OutOfRange {
                    key,
                    value,
                    allowed: format!("{lo} to {hi}"),
                })
            } else {
                Ok(())
            }
        };
        range("ch", self.ch, 1, 4096)?;
        range("n_res", self.n_res, 1, 64)?;
        range("n_dis_global", self.n_dis_global, 3, 12)?;
        range("n_dis_local", self.n_dis_local, 3, 12)?;
        if !self.img_size.is_multiple_of(4) {
            return Err(ConfigError::OutOfRange {
                key: "img_size",
                value: self.img_size,
                allowed: "a multiple of 4 (the generator downsamples twice by 2)".into(),
            });
        }
        let min = self.min_img_size();
        if self.img_size < min {
            return Err(ConfigError::ImageTooSmall {
                img_size: self.img_size,
                n_dis_global: self.n_dis_global,
                n_dis_local: self.n_dis_local,
                min,
            });
        }
        Ok(())
    }

    /// Channels of the bottleneck feature map (`ngf * 4`).
    pub fn bottleneck_channels(&self) -> usize {
        self.ch * 4
    }

    /// Input width of the first MLP layer (`FC.0`): the flattened bottleneck map in full mode,
    /// its channel averages in light mode.
    pub fn mlp_input(&self) -> usize {
        let c = self.bottleneck_channels();
        if self.light {
            c
        } else {
            c * (self.img_size / 4) * (self.img_size / 4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_official() {
        let c = ModelConfig::default();
        c.validate().unwrap();
        assert_eq!(c.min_img_size(), 96);
        assert_eq!(c.mlp_input(), 256 * 64 * 64);
    }

    #[test]
    fn rejects_sizes_with_the_minimum_named() {
        let c = ModelConfig {
            img_size: 64,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("minimum is 96"), "{e}");
        let c = ModelConfig {
            img_size: 98,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("img_size"));
        let c = ModelConfig {
            n_dis_local: 2,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.n_dis_local = 2"));
    }
}
