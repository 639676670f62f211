//! Plain convolution and linear layers with the official key names (`weight`, `bias`).
//!
//! Burn's `nn::Conv2d` and `nn::Linear` would do the arithmetic, but building them from an
//! official state dict needs these thin versions anyway: we own the parameter ids and layouts.

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::{conv2d, interpolate};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{DType, FloatDType};

use crate::init::Init;
use crate::kernels::{from_backend, into_backend, Fast, KernelBackend, ReflectConvOptions};
use crate::params::{ParamSource, StateWriter};
use crate::precision::Precision;
use crate::KeyError;

/// Reflection padding of `p` pixels on every side (`nn.ReflectionPad2d(p)`).
pub fn reflect_pad<B: Backend>(x: Tensor<B, 4>, p: usize) -> Tensor<B, 4> {
    x.pad((p, p, p, p), PadMode::Reflect)
}

/// A square convolution without padding (the official blocks pad explicitly before it).
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    /// `[out, in, k, k]`, as in PyTorch.
    pub weight: Param<Tensor<B, 4>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub stride: usize,
}

impl<B: Backend> Conv<B> {
    /// Loads (or initialises) `weight` and, when `bias`, `bias`.
    pub fn load(
        src: &ParamSource<B>,
        [out, inp, k]: [usize; 3],
        stride: usize,
        bias: bool,
    ) -> Result<Self, KeyError> {
        let init = Init::torch_default(inp * k * k);
        Ok(Self {
            weight: src.param("weight", [out, inp, k, k], init)?,
            bias: if bias {
                Some(src.param("bias", [out], init)?)
            } else {
                None
            },
            stride,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("weight", self.weight.val());
        if let Some(b) = &self.bias {
            w.tensor("bias", b.val());
        }
    }

    /// `[batch, in, h, w]` to `[batch, out, (h - k) / stride + 1, ...]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.stride,
        )
    }

    /// This 3x3 stride-1 convolution after `nn.Upsample(scale_factor=2)` and
    /// `nn.ReflectionPad2d(1)`: `[batch, in, h, w]` to `[batch, out, 2h, 2w]`.
    pub fn forward_upsample_reflect(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        assert_eq!(self.stride, 1, "upsampling convolutions have stride 1");
        upsample_reflect_conv(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }

    /// This convolution after `nn.ReflectionPad2d(pad)`: `[batch, in, h, w]` to `[batch, out,
    /// (h + 2 pad - k) / stride + 1, ...]`.
    pub fn forward_reflect(&self, x: Tensor<B, 4>, pad: usize) -> Tensor<B, 4> {
        reflect_conv(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            self.stride,
            pad,
        )
    }
}

/// `reflect_conv(Upsample(scale_factor=2, mode='nearest')(x), weight, bias, 1, 1)` for a 3x3
/// `weight`: the official up-sampling blocks' `nn.Upsample`, `nn.ReflectionPad2d(1)` and
/// convolution. On Flex and `Autodiff<Flex>` in f32 one kernel reads the input through both the
/// upsampling and the reflection (neither the 4x larger upsampled input nor a padded copy is
/// built or kept for the backward); elsewhere burn's `interpolate` then [`reflect_conv`].
pub fn upsample_reflect_conv<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 4> {
    let opts = ReflectConvOptions {
        stride: 1,
        pad: 1,
        upsample: 2,
    };
    let k3 = weight.dims()[2] == 3;
    fused_or(x, weight, bias, opts, k3, |x, weight, bias| {
        let [_, _, h, w] = x.dims();
        let nearest = InterpolateOptions::new(InterpolateMode::Nearest);
        reflect_conv(interpolate(x, [2 * h, 2 * w], nearest), weight, bias, 1, 1)
    })
}

/// `conv2d(ReflectionPad2d(pad)(x), weight, bias, stride)` with a square `weight` (`[out, in,
/// k, k]`), as each padded convolution of the official networks.
///
/// On Flex and `Autodiff<Flex>` in f32 (tensors and this thread's [`Precision`]) this runs our
/// fused kernel ([`crate::kernels::reflect_conv`]), which never builds the padded input; on any
/// other backend or precision burn's pad and [`conv`].
pub fn reflect_conv<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: usize,
    pad: usize,
) -> Tensor<B, 4> {
    let opts = ReflectConvOptions {
        stride,
        pad,
        upsample: 1,
    };
    fused_or(x, weight, bias, opts, true, |x, weight, bias| {
        conv(reflect_pad(x, pad), weight, bias, stride)
    })
}

/// Our kernel for `opts` on Flex and `Autodiff<Flex>` when the tensors and this thread's
/// [`Precision`] are f32 and `kernel_applies`; `composed` (burn's ops) on any other backend or
/// precision.
fn fused_or<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    opts: ReflectConvOptions,
    kernel_applies: bool,
    composed: impl FnOnce(Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let f32s = Precision::current() == Precision::F32
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
    match Fast::chosen::<B>().filter(|_| f32s && kernel_applies) {
        Some(Fast::Flex) => fused::<B, Flex>(x, weight, bias, opts),
        Some(Fast::AutodiffFlex) => fused::<B, Autodiff<Flex>>(x, weight, bias, opts),
        None => composed(x, weight, bias),
    }
}

/// [`KernelBackend::reflect_conv2d`] on `K`, which is `B` itself.
fn fused<B: Backend, K: KernelBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    opts: ReflectConvOptions,
) -> Tensor<B, 4> {
    from_backend::<K, B, 4>(K::reflect_conv2d(
        into_backend::<B, K, 4>(x),
        into_backend::<B, K, 4>(weight),
        bias.map(into_backend::<B, K, 1>),
        opts,
    ))
}

/// Unpadded convolution with the given weight (used by spectral-normed layers too).
pub fn conv<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: usize,
) -> Tensor<B, 4> {
    let options = ConvOptions::new([stride, stride], [0, 0], [1, 1], 1);
    in_compute_precision(|p| conv2d(p.cast(x), p.cast(weight), bias.map(|b| p.cast(b)), options))
}

/// `x @ weight` (`[batch, in]` times `[in, out]`), the matrix work of every linear layer.
pub fn linear<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 2>) -> Tensor<B, 2> {
    in_compute_precision(|p| p.cast(x).matmul(p.cast(weight)))
}

/// Runs one layer's matrix work in this thread's [`Precision`]: `work` casts its float32
/// inputs with the given caster, and the result comes back as float32, so norms, spectral-norm
/// power iterations and losses only ever see float32 (torch's autocast runs convolutions and
/// matmuls in half precision and reductions in float32). In float32 nothing is cast.
fn in_compute_precision<B: Backend, const D: usize>(
    work: impl FnOnce(Caster) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let precision = Precision::current();
    let out = work(Caster(precision));
    match precision {
        Precision::F32 => out,
        _ => out.cast(FloatDType::F32),
    }
}

/// Casts a layer's inputs to the compute type (the identity in float32).
#[derive(Clone, Copy)]
struct Caster(Precision);

impl Caster {
    fn cast<B: Backend, const D: usize>(self, t: Tensor<B, D>) -> Tensor<B, D> {
        match self.0 {
            Precision::F32 => t,
            p => t.cast(p.dtype()),
        }
    }
}

/// A bias-free linear layer (every linear layer of the official generator has `bias=False`).
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    /// `[in, out]`: the transpose of PyTorch's `[out, in]`.
    pub weight: Param<Tensor<B, 2>>,
}

impl<B: Backend> Linear<B> {
    pub fn load(src: &ParamSource<B>, out: usize, inp: usize) -> Result<Self, KeyError> {
        Ok(Self {
            weight: src.linear_weight("weight", out, inp)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.linear_weight("weight", self.weight.val());
    }

    /// `[batch, in]` to `[batch, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        linear(x, self.weight.val())
    }
}
