//! Adaptive Instance-Layer Normalisation (paper eq. 1; official `adaILN`).

use burn::module::Param;
use burn::prelude::*;

use super::norm_affine;
use crate::init::Init;
use crate::params::{ParamSource, StateWriter};
use crate::KeyError;

/// AdaILN: the instance-layer mix scaled and shifted by gamma and beta computed from the
/// attention features. Its only parameter is `rho` (`[1, C, 1, 1]`, initialised to 0.9 and
/// clipped to [0, 1] after each generator update by the trainer).
#[derive(Module, Debug)]
pub struct AdaIln<B: Backend> {
    pub rho: Param<Tensor<B, 4>>,
}

impl<B: Backend> AdaIln<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        Ok(Self {
            rho: src.param("rho", [1, channels, 1, 1], Init::Const(0.9))?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        w.tensor("rho", self.rho.val());
    }

    /// `x`: `[batch, C, h, w]`; `gamma`, `beta`: `[batch, C]`.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        gamma: Tensor<B, 2>,
        beta: Tensor<B, 2>,
    ) -> Tensor<B, 4> {
        norm_affine(x, self.rho.val(), gamma, beta, false)
    }

    /// `relu(self.forward(x, gamma, beta))` in one op.
    pub fn forward_relu(
        &self,
        x: Tensor<B, 4>,
        gamma: Tensor<B, 2>,
        beta: Tensor<B, 2>,
    ) -> Tensor<B, 4> {
        norm_affine(x, self.rho.val(), gamma, beta, true)
    }
}
