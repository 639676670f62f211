//! The generator of the official TensorFlow U-GAT-IT (taki0112/UGATIT), whose released
//! selfie2anime weights exist. Only generators: fine-tuning from TF weights is out of scope (its
//! discriminators differ from the PyTorch model's). Reading its checkpoints is the storage
//! crate's.

pub mod generator;
pub mod norm;

use std::cell::RefCell;
use std::collections::BTreeSet;

use burn::prelude::*;

pub use generator::{TfConfig, TfGenerator};

use crate::nets::Direction;
use crate::params::{check_all_used, ParamSource, TensorSource};
use crate::KeyError;

/// The TF scope of the generator for `direction`: the official code's `generator_B` turns A
/// into B.
pub fn scope(direction: Direction) -> &'static str {
    match direction {
        Direction::A2B => "generator_B",
        Direction::B2A => "generator_A",
    }
}

/// Builds a TF generator from its tensors (keys below its scope, `.`-separated, kernels OIHW).
pub fn build<B: Backend>(
    cfg: TfConfig,
    sd: &dyn TensorSource,
    name: &str,
    device: &B::Device,
) -> Result<TfGenerator<B>, KeyError> {
    let used = RefCell::new(BTreeSet::new());
    let g = TfGenerator::load(&ParamSource::from_dict(sd, &used, name, device), cfg)?;
    check_all_used(sd, &used, name)?;
    Ok(g)
}
