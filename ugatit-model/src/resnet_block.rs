//! The encoder's residual block (official `ResnetBlock`, `use_bias=False`).

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::layers::Conv;
use crate::norm::instance_norm;
use crate::params::{ParamSource, StateWriter};
use crate::KeyError;

/// `x + IN(conv(pad(ReLU(IN(conv(pad(x)))))))` with 3x3 convolutions; its keys are
/// `conv_block.1.weight` and `conv_block.5.weight` (the official `nn.Sequential` indices).
#[derive(Module, Debug)]
pub struct ResnetBlock<B: Backend> {
    pub conv1: Conv<B>,
    pub conv2: Conv<B>,
}

impl<B: Backend> ResnetBlock<B> {
    pub fn load(src: &ParamSource<B>, channels: usize) -> Result<Self, KeyError> {
        let src = src.pp("conv_block");
        Ok(Self {
            conv1: Conv::load(&src.pp(1), [channels, channels, 3], 1, false)?,
            conv2: Conv::load(&src.pp(5), [channels, channels, 3], 1, false)?,
        })
    }

    pub fn save(&self, w: &mut StateWriter) {
        let mut w = w.pp("conv_block");
        self.conv1.save(&mut w.pp(1));
        self.conv2.save(&mut w.pp(5));
    }

    /// `[batch, C, h, w]` in and out.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let r = relu(instance_norm(self.conv1.forward_reflect(x.clone(), 1)));
        let r = instance_norm(self.conv2.forward_reflect(r, 1));
        x + r
    }
}
