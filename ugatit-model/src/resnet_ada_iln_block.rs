//! The decoder's residual block with AdaILN (official `ResnetAdaILNBlock`, `use_bias=False`).

use burn::prelude::*;

use crate::layers::Conv;
use crate::norm::AdaIln;
use crate::params::{ParamSource, StateWriter};
use crate::KeyError;

/// `x + AdaILN(conv(pad(ReLU(AdaILN(conv(pad(x)))))))`, every AdaILN taking the same gamma and
/// beta from the generator's MLP.
#[derive(Module, Debug)]
pub struct ResnetAdaIlnBlock<B: Backend> {
    pub conv1: Conv<B>,
    pub norm1: AdaIln<B>,
    pub conv2: Conv<B>,
    pub norm2: AdaIln<B>,
}

impl<B: Backend> ResnetAdaIlnBlock<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        let shape = [channels, channels, 3];
        Ok(Self {
            conv1: Conv::load(&src.pp("conv1"), shape, 1, false)?,
            norm1: AdaIln::load(&src.pp("norm1"), channels)?,
            conv2: Conv::load(&src.pp("conv2"), shape, 1, false)?,
            norm2: AdaIln::load(&src.pp("norm2"), channels)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        self.conv1.save(&mut w.pp("conv1"));
        self.norm1.save(&mut w.pp("norm1"));
        self.conv2.save(&mut w.pp("conv2"));
        self.norm2.save(&mut w.pp("norm2"));
    }

    /// `x`: `[batch, C, h, w]`; `gamma`, `beta`: `[batch, C]`.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        gamma: Tensor<B, 2>,
        beta: Tensor<B, 2>,
    ) -> Tensor<B, 4> {
        let r = self.conv1.forward_reflect(x.clone(), 1);
        let r = self.norm1.forward_relu(r, gamma.clone(), beta.clone());
        let r = self.conv2.forward_reflect(r, 1);
        x + self.norm2.forward(r, gamma, beta)
    }
}
