//! Instance-Layer Normalisation with learned affine (official `ILN`, used after upsampling).

use burn::module::Param;
use burn::prelude::*;

use super::norm_affine;
use crate::init::Init;
use crate::params::{ParamSource, StateWriter};
use crate::KeyError;

/// ILN: the instance-layer mix with its own `rho`, `gamma`, `beta`, each `[1, C, 1, 1]` and
/// initialised to 0, 1 and 0 as in the official code.
#[derive(Module, Debug)]
pub struct Iln<B: Backend> {
    pub rho: Param<Tensor<B, 4>>,
    pub gamma: Param<Tensor<B, 4>>,
    pub beta: Param<Tensor<B, 4>>,
}

impl<B: Backend> Iln<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        let shape = [1, channels, 1, 1];
        Ok(Self {
            rho: src.param("rho", shape, Init::Const(0.0))?,
            gamma: src.param("gamma", shape, Init::Const(1.0))?,
            beta: src.param("beta", shape, Init::Const(0.0))?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("rho", self.rho.val());
        w.tensor("gamma", self.gamma.val());
        w.tensor("beta", self.beta.val());
    }

    /// `[batch, C, h, w]` in and out.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.apply(x, false)
    }

    /// `relu(self.forward(x))` in one op.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.apply(x, true)
    }

    fn apply(&self, x: Tensor<B, 4>, relu_after: bool) -> Tensor<B, 4> {
        let c = x.dims()[1];
        let gamma = self.gamma.val().reshape([1, c]);
        let beta = self.beta.val().reshape([1, c]);
        norm_affine(x, self.rho.val(), gamma, beta, relu_after)
    }
}
