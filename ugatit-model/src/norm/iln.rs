//! Instance-Layer Normalisation with learned affine (official `ILN`, used after upsampling).

use burn::module::Param;
use burn::prelude::*;

use super::instance_layer_mix;
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
        instance_layer_mix(x, self.rho.val()) * self.gamma.val() + self.beta.val()
    }
}
