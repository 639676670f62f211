//! The TF model's normalisations. Every variance is **biased** (`tf.nn.moments`), unlike the
//! PyTorch model's unbiased AdaILN/ILN statistics.

use burn::module::Param;
use burn::prelude::*;

use crate::init::Init;
use crate::norm::EPS;
use crate::params::ParamSource;
use crate::KeyError;

/// `(x - mean) / sqrt(var + eps)` over the trailing dimensions from `from` (2: per channel,
/// 1: per sample), biased variance.
fn standardise<B: Backend>(x: Tensor<B, 4>, from: usize) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let groups = if from == 2 { b * c } else { b };
    let flat = x.reshape([groups, (b * c * h * w) / groups]);
    let (var, mean) = flat.clone().var_mean_bias(1);
    ((flat - mean) / (var + EPS).sqrt()).reshape([b, c, h, w])
}

/// `rho * IN(x) + (1 - rho) * LN(x)`, `rho` `[C]`.
fn mix<B: Backend>(x: Tensor<B, 4>, rho: Tensor<B, 1>) -> Tensor<B, 4> {
    let c = rho.dims()[0];
    let rho = rho.reshape([1, c, 1, 1]);
    standardise(x.clone(), 2) * rho.clone() + standardise(x, 1) * (rho.neg() + 1.0)
}

fn per_channel<B: Backend>(t: Tensor<B, 1>) -> Tensor<B, 4> {
    let c = t.dims()[0];
    t.reshape([1, c, 1, 1])
}

/// `tf.contrib.layers.instance_norm` (learned `gamma`, `beta`; eps 1e-5).
#[derive(Module, Debug)]
pub struct AffineInstanceNorm<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
}

impl<B: Backend> AffineInstanceNorm<B> {
    pub fn load(src: &ParamSource<B>, c: usize) -> Result<Self, KeyError> {
        Ok(Self {
            gamma: src.param("gamma", [c], Init::Const(1.0))?,
            beta: src.param("beta", [c], Init::Const(0.0))?,
        })
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        standardise(x, 2) * per_channel(self.gamma.val()) + per_channel(self.beta.val())
    }
}

/// `adaptive_instance_layer_norm` with `smoothing`: rho is used as `clip(rho - 0.1, 0, 1)`.
#[derive(Module, Debug)]
pub struct TfAdaIln<B: Backend> {
    pub rho: Param<Tensor<B, 1>>,
}

impl<B: Backend> TfAdaIln<B> {
    pub fn load(src: &ParamSource<B>, c: usize) -> Result<Self, KeyError> {
        Ok(Self {
            rho: src.param("rho", [c], Init::Const(1.0))?,
        })
    }

    /// `x` `[batch, C, h, w]`; `gamma`, `beta` `[batch, C]`.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        gamma: Tensor<B, 2>,
        beta: Tensor<B, 2>,
    ) -> Tensor<B, 4> {
        let [b, c] = gamma.dims();
        let rho = (self.rho.val() - 0.1).clamp(0.0, 1.0);
        mix(x, rho) * gamma.reshape([b, c, 1, 1]) + beta.reshape([b, c, 1, 1])
    }
}

/// `layer_instance_norm` of the upsampling blocks: rho as stored, learned gamma and beta.
#[derive(Module, Debug)]
pub struct TfIln<B: Backend> {
    pub rho: Param<Tensor<B, 1>>,
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
}

impl<B: Backend> TfIln<B> {
    pub fn load(src: &ParamSource<B>, c: usize) -> Result<Self, KeyError> {
        Ok(Self {
            rho: src.param("rho", [c], Init::Const(0.0))?,
            gamma: src.param("gamma", [c], Init::Const(1.0))?,
            beta: src.param("beta", [c], Init::Const(0.0))?,
        })
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        mix(x, self.rho.val()) * per_channel(self.gamma.val()) + per_channel(self.beta.val())
    }
}
