//! A generator of either architecture: the PyTorch model's or the TensorFlow model's.

use burn::prelude::*;

use crate::generator::{Generator, GeneratorOutput};
use crate::params::StateDict;
use crate::tf::TfGenerator;

/// The architecture a generator file or checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// The official UGATIT-pytorch model (and ours).
    #[default]
    Pytorch,
    /// The official TensorFlow model (taki0112/UGATIT), whose released selfie2anime weights
    /// exist.
    Tf,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Pytorch => "pytorch",
            Variant::Tf => "tf",
        }
    }
}

/// A loaded generator.
#[derive(Debug)]
pub enum AnyGenerator<B: Backend> {
    Pytorch(Box<Generator<B>>),
    /// A TF generator with its tensors (TF names, `.`-separated, kernels OIHW), as exports
    /// write them.
    Tf(Box<TfGenerator<B>>, StateDict),
}

impl<B: Backend> AnyGenerator<B> {
    /// `[batch, 3, H, W]` in [-1, 1] to the translation, CAM logits and heatmap.
    pub fn forward(&self, x: Tensor<B, 4>) -> GeneratorOutput<B> {
        match self {
            AnyGenerator::Pytorch(g) => g.forward(x),
            AnyGenerator::Tf(g, _) => g.forward(x),
        }
    }

    pub fn variant(&self) -> Variant {
        match self {
            AnyGenerator::Pytorch(_) => Variant::Pytorch,
            AnyGenerator::Tf(..) => Variant::Tf,
        }
    }
}
