//! Spectral normalisation (Miyato et al. 2018) as `torch.nn.utils.spectral_norm` does it, which
//! the official discriminators wrap around every layer but the 1x1 convolution.

use burn::module::{Param, RunningState};
use burn::prelude::*;

use crate::init::Init;
use crate::layers::{linear, reflect_conv};
use crate::params::{ParamSource, StateWriter};
use crate::KeyError;

/// Whether a spectral-normed forward pass is a training one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One power iteration per forward call, updating the stored `u` and `v` (torch's training
    /// mode; the official code never puts its discriminators in eval mode while training).
    Train,
    /// The stored `u` and `v` are used unchanged.
    Eval,
}

/// The persistent vectors of torch's spectral norm: `weight_u` (`[out]`) and `weight_v`
/// (`[in * kh * kw]`). Saved and loaded, never trained.
#[derive(Module, Debug)]
pub struct SpectralNorm<B: Backend> {
    pub u: RunningState<Tensor<B, 1>>,
    pub v: RunningState<Tensor<B, 1>>,
}

/// torch's `F.normalize(x, dim=0, eps=1e-12)`: `x / max(||x||, eps)`.
fn normalize<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-12);
    x / norm
}

impl<B: Backend> SpectralNorm<B> {
    pub fn load(src: &ParamSource<B>, rows: usize, cols: usize) -> Result<Self, KeyError> {
        Ok(Self {
            u: src.state("weight_u", rows)?,
            v: src.state("weight_v", cols)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("weight_u", self.u.value_sync());
        w.tensor("weight_v", self.v.value_sync());
    }

    /// The largest singular value estimate `sigma = u . (W v)` of `w` (`[rows, cols]`).
    ///
    /// In [`Mode::Train`] first runs one power iteration on the detached weight
    /// (`v = normalize(W^T u)`, `u = normalize(W v)`) and stores the new vectors. The gradient
    /// flows through `W` only, with `u` and `v` constants, as in torch.
    pub fn sigma(&self, w: Tensor<B, 2>, mode: Mode) -> Tensor<B, 1> {
        let (u, v) = match mode {
            Mode::Eval => (self.u.value_sync(), self.v.value_sync()),
            Mode::Train => {
                let wd = w.clone().detach();
                let u = self.u.value_sync();
                let v = normalize(
                    wd.clone()
                        .transpose()
                        .matmul(u.unsqueeze_dim::<2>(1))
                        .squeeze_dim::<1>(1),
                );
                let u = normalize(
                    wd.matmul(v.clone().unsqueeze_dim::<2>(1))
                        .squeeze_dim::<1>(1),
                );
                self.u.update(u.clone());
                self.v.update(v.clone());
                (u, v)
            }
        };
        let wv = w.matmul(v.unsqueeze_dim::<2>(1));
        u.unsqueeze_dim::<2>(0).matmul(wv).reshape([1])
    }
}

/// A spectral-normed 4x4 convolution of the discriminator (`weight_orig`, `weight_u`,
/// `weight_v`, optional `bias`) on the reflection-padded input.
#[derive(Module, Debug)]
pub struct SnConv<B: Backend> {
    /// `[out, in, k, k]`: the raw weight, divided by sigma at every forward.
    pub weight_orig: Param<Tensor<B, 4>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub sn: SpectralNorm<B>,
    pub stride: usize,
}

impl<B: Backend> SnConv<B> {
    pub fn load(
        src: &ParamSource<B>,
        [out, inp, k]: [usize; 3],
        stride: usize,
        bias: bool,
    ) -> Result<Self, KeyError> {
        let init = Init::torch_default(inp * k * k);
        Ok(Self {
            weight_orig: src.param("weight_orig", [out, inp, k, k], init)?,
            bias: if bias {
                Some(src.param("bias", [out], init)?)
            } else {
                None
            },
            sn: SpectralNorm::load(src, out, inp * k * k)?,
            stride,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("weight_orig", self.weight_orig.val());
        if let Some(b) = &self.bias {
            w.tensor("bias", b.val());
        }
        self.sn.save(w);
    }

    /// `nn.ReflectionPad2d(pad)`, then this convolution: `[batch, in, h, w]` to `[batch, out,
    /// (h + 2 pad - k) / stride + 1, ...]`.
    pub fn forward_reflect(&self, x: Tensor<B, 4>, pad: usize, mode: Mode) -> Tensor<B, 4> {
        let w = self.weight_orig.val();
        let [out, inp, kh, kw] = w.dims();
        let sigma = self.sn.sigma(w.clone().reshape([out, inp * kh * kw]), mode);
        let w = w / sigma.reshape([1, 1, 1, 1]);
        reflect_conv(x, w, self.bias.as_ref().map(|b| b.val()), self.stride, pad)
    }
}

/// A spectral-normed bias-free linear layer (the discriminator's CAM logits).
#[derive(Module, Debug)]
pub struct SnLinear<B: Backend> {
    /// `[out, in]`, PyTorch layout: the matrix spectral norm works on.
    pub weight_orig: Param<Tensor<B, 2>>,
    pub sn: SpectralNorm<B>,
}

impl<B: Backend> SnLinear<B> {
    pub fn load(src: &ParamSource<B>, out: usize, inp: usize) -> Result<Self, KeyError> {
        Ok(Self {
            weight_orig: src.param("weight_orig", [out, inp], Init::torch_default(inp))?,
            sn: SpectralNorm::load(src, out, inp)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("weight_orig", self.weight_orig.val());
        self.sn.save(w);
    }

    /// `[batch, in]` to `[batch, out]` with the normalised weight.
    pub fn forward(&self, x: Tensor<B, 2>, mode: Mode) -> Tensor<B, 2> {
        let w = self.weight_orig.val();
        let sigma = self.sn.sigma(w.clone(), mode);
        let w = w / sigma.reshape([1, 1]);
        linear(x, w.transpose())
    }
}
