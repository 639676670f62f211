//! The generator of the official TensorFlow U-GAT-IT (taki0112/UGATIT, `UGATIT.generator`),
//! which the released selfie2anime weights need. Its differences from the PyTorch model: every
//! convolution and dense layer has a bias; the encoder's instance norms are affine; all
//! variances are biased; the stride-2 encoder convolutions pad 1 top/left and 0 bottom/right;
//! one dense `CAM_logit` gives both CAM logits and the maps are reweighted by its kernel plus
//! bias; the MLP has biases, is `ch * n_res` wide and (full mode) flattens in H, W, C order;
//! AdaILN uses `clip(rho - 0.1, 0, 1)`. Tensors here are NCHW like the rest of the crate;
//! kernels are converted from TF's HWIO when read.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};

use super::norm::{AffineInstanceNorm, TfAdaIln, TfIln};
use crate::generator::GeneratorOutput;
use crate::init::Init;
use crate::layers::Conv;
use crate::params::ParamSource;
use crate::KeyError;

/// The architecture of a TF generator, read from its shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TfConfig {
    pub ch: usize,
    pub n_res: usize,
    pub light: bool,
    /// Fixed by a full model's first MLP layer; `None` for a light one.
    pub img_size: Option<usize>,
}

/// `conv(..., scope)/conv2d/{kernel,bias}`, kernel stored OIHW.
fn tf_conv<B: Backend>(
    src: &ParamSource<B>,
    [out, inp, k]: [usize; 3],
    stride: usize,
) -> Result<Conv<B>, KeyError> {
    let src = src.pp("conv2d");
    let init = Init::torch_default(inp * k * k);
    Ok(Conv {
        weight: src.param("kernel", [out, inp, k, k], init)?,
        bias: Some(src.param("bias", [out], init)?),
        stride,
    })
}

/// A dense layer with bias, kernel `[in, out]` as TF stores it.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    pub kernel: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    fn load(src: &ParamSource<B>, inp: usize, out: usize) -> Result<Self, KeyError> {
        let init = Init::torch_default(inp);
        Ok(Self {
            kernel: src.param("kernel", [inp, out], init)?,
            bias: src.param("bias", [out], init)?,
        })
    }

    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let out = self.bias.dims()[0];
        x.matmul(self.kernel.val()) + self.bias.val().reshape([1, out])
    }
}

/// `resblock`: two reflect-padded 3x3 convolutions with affine instance norms.
#[derive(Module, Debug)]
pub struct TfResBlock<B: Backend> {
    pub conv1: Conv<B>,
    pub norm1: AffineInstanceNorm<B>,
    pub conv2: Conv<B>,
    pub norm2: AffineInstanceNorm<B>,
}

/// `adaptive_ins_layer_resblock`.
#[derive(Module, Debug)]
pub struct TfAdaResBlock<B: Backend> {
    pub conv1: Conv<B>,
    pub norm1: TfAdaIln<B>,
    pub conv2: Conv<B>,
    pub norm2: TfAdaIln<B>,
}

/// The TF generator.
#[derive(Module, Debug)]
pub struct TfGenerator<B: Backend> {
    pub conv_in: Conv<B>,
    pub norm_in: AffineInstanceNorm<B>,
    pub down: Vec<Conv<B>>,
    pub down_norm: Vec<AffineInstanceNorm<B>>,
    pub encoder_blocks: Vec<TfResBlock<B>>,
    pub cam_logit: Dense<B>,
    pub conv1x1: Conv<B>,
    pub mlp: Vec<Dense<B>>,
    pub gamma: Dense<B>,
    pub beta: Dense<B>,
    pub decoder_blocks: Vec<TfAdaResBlock<B>>,
    pub up: Vec<Conv<B>>,
    pub up_norm: Vec<TfIln<B>>,
    pub conv_out: Conv<B>,
    pub light: bool,
}

impl<B: Backend> TfGenerator<B> {
    /// Builds the generator from tensors named as in the checkpoint, below `generator_X/`
    /// (with `/` written `.`).
    pub fn load(src: &ParamSource<B>, cfg: TfConfig) -> Result<Self, KeyError> {
        let ch = cfg.ch;
        let c = 4 * ch;
        let mlp_width = ch * cfg.n_res;
        let mlp_in = match (cfg.light, cfg.img_size) {
            (false, Some(s)) => (s / 4) * (s / 4) * c,
            _ => c,
        };
        let res = |scope: String, i: usize| src.pp(scope).pp(format!("res{i}"));
        Ok(Self {
            conv_in: tf_conv(&src.pp("conv"), [ch, 3, 7], 1)?,
            norm_in: AffineInstanceNorm::load(&src.pp("ins_norm"), ch)?,
            down: (0..2)
                .map(|i| tf_conv(&src.pp(format!("conv_{i}")), [ch << (i + 1), ch << i, 3], 2))
                .collect::<Result<_, _>>()?,
            down_norm: (0..2)
                .map(|i| AffineInstanceNorm::load(&src.pp(format!("ins_norm_{i}")), ch << (i + 1)))
                .collect::<Result<_, _>>()?,
            encoder_blocks: (0..cfg.n_res)
                .map(|i| {
                    let s = format!("resblock_{i}");
                    Ok(TfResBlock {
                        conv1: tf_conv(&res(s.clone(), 1).pp("conv_0"), [c, c, 3], 1)?,
                        norm1: AffineInstanceNorm::load(&res(s.clone(), 1).pp("instance_norm"), c)?,
                        conv2: tf_conv(&res(s.clone(), 2).pp("conv_0"), [c, c, 3], 1)?,
                        norm2: AffineInstanceNorm::load(&res(s, 2).pp("instance_norm"), c)?,
                    })
                })
                .collect::<Result<_, KeyError>>()?,
            cam_logit: Dense::load(&src.pp("CAM_logit"), c, 1)?,
            conv1x1: tf_conv(&src.pp("conv_1x1"), [c, 2 * c, 1], 1)?,
            mlp: (0..2)
                .map(|i| {
                    let inp = if i == 0 { mlp_in } else { mlp_width };
                    Dense::load(
                        &src.pp("MLP").pp(format!("linear_{i}")).pp("dense"),
                        inp,
                        mlp_width,
                    )
                })
                .collect::<Result<_, _>>()?,
            gamma: Dense::load(&src.pp("MLP").pp("gamma").pp("dense"), mlp_width, mlp_width)?,
            beta: Dense::load(&src.pp("MLP").pp("beta").pp("dense"), mlp_width, mlp_width)?,
            decoder_blocks: (0..cfg.n_res)
                .map(|i| {
                    let s = format!("adaptive_resblock{i}");
                    Ok(TfAdaResBlock {
                        conv1: tf_conv(&res(s.clone(), 1).pp("conv_0"), [c, c, 3], 1)?,
                        norm1: TfAdaIln::load(&res(s.clone(), 1).pp("instance_layer_norm"), c)?,
                        conv2: tf_conv(&res(s.clone(), 2).pp("conv_0"), [c, c, 3], 1)?,
                        norm2: TfAdaIln::load(&res(s, 2).pp("instance_layer_norm"), c)?,
                    })
                })
                .collect::<Result<_, KeyError>>()?,
            up: (0..2)
                .map(|i| {
                    tf_conv(
                        &src.pp(format!("up_conv_{i}")),
                        [c >> (i + 1), c >> i, 3],
                        1,
                    )
                })
                .collect::<Result<_, _>>()?,
            up_norm: (0..2)
                .map(|i| TfIln::load(&src.pp(format!("layer_ins_norm_{i}")), c >> (i + 1)))
                .collect::<Result<_, _>>()?,
            conv_out: tf_conv(&src.pp("G_logit"), [3, ch, 7], 1)?,
            light: cfg.light,
        })
    }

    /// `[batch, 3, H, W]` in [-1, 1] to the translation, CAM logits and heatmap.
    pub fn forward(&self, x: Tensor<B, 4>) -> GeneratorOutput<B> {
        let mut h = relu(self.norm_in.forward(self.conv_in.forward_reflect(x, 3)));
        for (conv, norm) in self.down.iter().zip(&self.down_norm) {
            // The official `conv` pads `kernel - stride - pad` = 0 after when that is odd.
            h = relu(norm.forward(conv.forward(h.pad((1, 0, 1, 0), PadMode::Reflect))));
        }
        for b in &self.encoder_blocks {
            let r = relu(b.norm1.forward(b.conv1.forward_reflect(h.clone(), 1)));
            h = h + b.norm2.forward(b.conv2.forward_reflect(r, 1));
        }
        let [bs, c, hh, ww] = h.dims();
        // One dense layer scores both pooled vectors; the maps are reweighted by kernel + bias.
        let gap = h.clone().mean_dims(&[2, 3]).reshape([bs, c]);
        let gmp = h.clone().max_dims(&[2, 3]).reshape([bs, c]);
        let cam_logit = Tensor::cat(
            vec![self.cam_logit.forward(gap), self.cam_logit.forward(gmp)],
            1,
        );
        let weight = (self.cam_logit.kernel.val().reshape([c]) + self.cam_logit.bias.val())
            .reshape([1, c, 1, 1]);
        let h = Tensor::cat(vec![h.clone() * weight.clone(), h * weight], 1);
        let h = relu(self.conv1x1.forward(h));
        let heatmap = h.clone().sum_dim(1);
        let mut z = if self.light {
            h.clone().mean_dims(&[2, 3]).reshape([bs, c])
        } else {
            // TF flattens NHWC: height, then width, then channel.
            h.clone().permute([0, 2, 3, 1]).reshape([bs, hh * ww * c])
        };
        for dense in &self.mlp {
            z = relu(dense.forward(z));
        }
        let gamma = self.gamma.forward(z.clone());
        let beta = self.beta.forward(z);
        let mut h = h;
        for b in &self.decoder_blocks {
            let r = b.conv1.forward_reflect(h.clone(), 1);
            let r = relu(b.norm1.forward(r, gamma.clone(), beta.clone()));
            let r = b.conv2.forward_reflect(r, 1);
            h = h + b.norm2.forward(r, gamma.clone(), beta.clone());
        }
        for (conv, norm) in self.up.iter().zip(&self.up_norm) {
            let [_, _, hh, ww] = h.dims();
            h = interpolate(
                h,
                [2 * hh, 2 * ww],
                InterpolateOptions::new(InterpolateMode::Nearest),
            );
            h = relu(norm.forward(conv.forward_reflect(h, 1)));
        }
        let image = self.conv_out.forward_reflect(h, 3).tanh();
        GeneratorOutput {
            image,
            cam_logit,
            heatmap,
        }
    }
}
