//! Generator exports for serving.

use std::path::Path;

use burn::prelude::*;

use crate::config::ModelConfig;
use crate::generator::Generator;
use crate::nets::Direction;
use crate::weights::safetensors_file::{self, FileKind, FileMeta};
use crate::weights::{StateDict, StateWriter, WeightsError};

/// Writes one generator as a safetensors file with the official `state_dict` keys
/// (`DownBlock.1.weight`, ...) in float32, recording the model config, the direction and, if
/// known, the training step in its metadata.
pub fn save_generator_safetensors<B: Backend>(
    path: &Path,
    generator: &Generator<B>,
    config: &ModelConfig,
    direction: Direction,
    step: Option<u64>,
) -> Result<(), WeightsError> {
    let mut sd = StateDict::new();
    generator.save(&mut StateWriter::new(&mut sd));
    let meta = FileMeta {
        kind: FileKind::Generator,
        config: config.clone(),
        direction: Some(direction),
        step,
    };
    safetensors_file::write(path, &sd, &meta)
}
