//! The U-GAT-IT discriminator (official `Discriminator`), global or local by its depth.

use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

use crate::cam::SnCam;
use crate::params::{ParamSource, StateWriter};
use crate::spectral_norm::{Mode, SnConv};
use crate::KeyError;

/// What a discriminator returns.
#[derive(Debug, Clone)]
pub struct DiscriminatorOutput<B: Backend> {
    /// `[batch, 1, h, w]`: the PatchGAN logits.
    pub logit: Tensor<B, 4>,
    /// `[batch, 2]`: the CAM logits.
    pub cam_logit: Tensor<B, 2>,
    /// `[batch, 1, h + 1, w + 1]`: the attention heatmap before the last convolution.
    pub heatmap: Tensor<B, 4>,
}

/// `n_layers - 1` reflect-padded 4x4 spectral-normed convolutions with bias and LeakyReLU(0.2)
/// (stride 2, the last one stride 1; keys `model.1`, `model.4`, ...), CAM, and a final
/// reflect-padded 4x4 spectral-normed convolution to one channel without bias (`conv`).
#[derive(Module, Debug)]
pub struct Discriminator<B: Backend> {
    pub convs: Vec<SnConv<B>>,
    pub cam: SnCam<B>,
    pub conv_out: SnConv<B>,
}

/// Official `nn.Sequential` index of the i-th convolution (pad, conv, LeakyReLU per layer).
fn model_key(i: usize) -> usize {
    1 + 3 * i
}

impl<B: Backend> Discriminator<B> {
    /// Builds a discriminator of `n_layers` layers with base width `ch`.
    pub fn load(src: &ParamSource<B>, ch: usize, n_layers: usize) -> Result<Self, KeyError> {
        let model = src.pp("model");
        let n_convs = n_layers - 1;
        let convs = (0..n_convs)
            .map(|i| {
                let inp = if i == 0 { 3 } else { ch << (i - 1) };
                let stride = if i + 1 == n_convs { 1 } else { 2 };
                SnConv::load(&model.pp(model_key(i)), [ch << i, inp, 4], stride, true)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let c = ch << (n_convs - 1);
        Ok(Self {
            convs,
            cam: SnCam::load(src, c)?,
            conv_out: SnConv::load(&src.pp("conv"), [1, c, 4], 1, false)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        let mut model = w.pp("model");
        for (i, conv) in self.convs.iter().enumerate() {
            conv.save(&mut model.pp(model_key(i)));
        }
        self.cam.save(w);
        self.conv_out.save(&mut w.pp("conv"));
    }

    /// `[batch, 3, H, W]` images in [-1, 1]. In [`Mode::Train`] every spectral norm runs one
    /// power iteration and updates its vectors, as each training forward does in torch.
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> DiscriminatorOutput<B> {
        let mut h = x;
        for conv in &self.convs {
            h = leaky_relu(conv.forward_reflect(h, 1, mode), 0.2);
        }
        let cam = self.cam.forward(h, mode);
        let logit = self.conv_out.forward_reflect(cam.features, 1, mode);
        DiscriminatorOutput {
            logit,
            cam_logit: cam.cam_logit,
            heatmap: cam.heatmap,
        }
    }
}
