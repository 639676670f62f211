//! Class activation map attention (paper section 2.1.1, eq. 1 and the auxiliary classifier
//! eta): global average and max pooled features are scored by two bias-free linear layers, and
//! the feature map is reweighted channel-wise by those layers' weights.

use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

use crate::layers::{Conv, Linear};
use crate::params::{ParamSource, StateWriter};
use crate::spectral_norm::{Mode, SnLinear};
use crate::KeyError;

/// What a CAM block gives: the attended features, the two CAM logits and the heatmap.
#[derive(Debug, Clone)]
pub struct CamOutput<B: Backend> {
    /// `[batch, C, h, w]` after the 1x1 convolution and activation.
    pub features: Tensor<B, 4>,
    /// `[batch, 2]`: the average-pool logit, then the max-pool logit.
    pub cam_logit: Tensor<B, 2>,
    /// `[batch, 1, h, w]`: channel sum of `features`.
    pub heatmap: Tensor<B, 4>,
}

/// The pooled logits and the reweighted, concatenated map `[x * w_gap, x * w_gmp]` (`[batch,
/// 2C, h, w]`), given the pooled-feature scorers and the per-channel weights (`[C]`) to
/// reweight with.
fn attend<B: Backend>(
    x: Tensor<B, 4>,
    score_gap: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
    score_gmp: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
    [w_gap, w_gmp]: [Tensor<B, 1>; 2],
) -> (Tensor<B, 4>, Tensor<B, 2>) {
    let [b, c, _, _] = x.dims();
    let gap = x.clone().mean_dims(&[2, 3]).reshape([b, c]);
    let gmp = x.clone().max_dims(&[2, 3]).reshape([b, c]);
    let cam_logit = Tensor::cat(vec![score_gap(gap), score_gmp(gmp)], 1);
    let reweighted = Tensor::cat(
        vec![
            x.clone() * w_gap.reshape([1, c, 1, 1]),
            x * w_gmp.reshape([1, c, 1, 1]),
        ],
        1,
    );
    (reweighted, cam_logit)
}

/// The generator's CAM (`gap_fc`, `gmp_fc`, `conv1x1`, ReLU).
#[derive(Module, Debug)]
pub struct Cam<B: Backend> {
    pub gap_fc: Linear<B>,
    pub gmp_fc: Linear<B>,
    pub conv1x1: Conv<B>,
}

impl<B: Backend> Cam<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        Ok(Self {
            gap_fc: Linear::load(&src.pp("gap_fc"), 1, channels)?,
            gmp_fc: Linear::load(&src.pp("gmp_fc"), 1, channels)?,
            conv1x1: Conv::load(&src.pp("conv1x1"), [channels, 2 * channels, 1], 1, true)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        self.gap_fc.save(&mut w.pp("gap_fc"));
        self.gmp_fc.save(&mut w.pp("gmp_fc"));
        self.conv1x1.save(&mut w.pp("conv1x1"));
    }

    /// `[batch, C, h, w]` in; features of the same shape out.
    pub fn forward(&self, x: Tensor<B, 4>) -> CamOutput<B> {
        let c = x.dims()[1];
        let weights = [
            self.gap_fc.weight.val().reshape([c]),
            self.gmp_fc.weight.val().reshape([c]),
        ];
        let (h, cam_logit) = attend(
            x,
            |g| self.gap_fc.forward(g),
            |m| self.gmp_fc.forward(m),
            weights,
        );
        let features = relu(self.conv1x1.forward(h));
        let heatmap = features.clone().sum_dim(1);
        CamOutput {
            features,
            cam_logit,
            heatmap,
        }
    }
}

/// The discriminator's CAM: spectral-normed scorers, LeakyReLU(0.2) after the 1x1 convolution
/// (which has no spectral norm), and the feature map reweighted by the **raw** `weight_orig`,
/// not the normalised weight: the official code reads `self.gap_fc.parameters()`, whose first
/// entry under torch's spectral norm is `weight_orig`.
#[derive(Module, Debug)]
pub struct SnCam<B: Backend> {
    pub gap_fc: SnLinear<B>,
    pub gmp_fc: SnLinear<B>,
    pub conv1x1: Conv<B>,
}

impl<B: Backend> SnCam<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        Ok(Self {
            gap_fc: SnLinear::load(&src.pp("gap_fc"), 1, channels)?,
            gmp_fc: SnLinear::load(&src.pp("gmp_fc"), 1, channels)?,
            conv1x1: Conv::load(&src.pp("conv1x1"), [channels, 2 * channels, 1], 1, true)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        self.gap_fc.save(&mut w.pp("gap_fc"));
        self.gmp_fc.save(&mut w.pp("gmp_fc"));
        self.conv1x1.save(&mut w.pp("conv1x1"));
    }

    /// `[batch, C, h, w]` in; features of the same shape out.
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> CamOutput<B> {
        let c = x.dims()[1];
        let raw = [
            self.gap_fc.weight_orig.val().reshape([c]),
            self.gmp_fc.weight_orig.val().reshape([c]),
        ];
        let (h, cam_logit) = attend(
            x,
            |g| self.gap_fc.forward(g, mode),
            |m| self.gmp_fc.forward(m, mode),
            raw,
        );
        let features = leaky_relu(self.conv1x1.forward(h), 0.2);
        let heatmap = features.clone().sum_dim(1);
        CamOutput {
            features,
            cam_logit,
            heatmap,
        }
    }
}
