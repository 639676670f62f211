//! Generator exports for serving: one function for every command that exports.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use ugatit_model::params::StateWriter;
use ugatit_model::{AnyGenerator, Cpu, Direction, Generator, ModelConfig, StateDict, Variant};

use crate::error::WeightsError;
use crate::formats::safetensors_file::{self, FileKind, FileMeta};
use crate::load::load_generator;

pub use crate::formats::safetensors_file::StoreDtype;

pub mod onnx;
pub mod onnx_file;
pub mod tf_onnx;

/// File format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// The official `state_dict` keys, our metadata.
    #[default]
    Safetensors,
    /// An ONNX graph of the generator with its weights as initialisers (moved to
    /// `<file>.data` beside it when the model would pass protobuf's 2 GiB limit).
    Onnx,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "safetensors" => Ok(ExportFormat::Safetensors),
            "onnx" => Ok(ExportFormat::Onnx),
            _ => Err(format!("unknown format {s:?}: use safetensors or onnx")),
        }
    }
}

impl std::str::FromStr for StoreDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(StoreDtype::F32),
            "f16" => Ok(StoreDtype::F16),
            "bf16" => Ok(StoreDtype::BF16),
            _ => Err(format!("unknown dtype {s:?}: use f32, f16 or bf16")),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub config: ModelConfig,
    pub step: Option<u64>,
    /// Bytes written in all, external data included.
    pub bytes: u64,
    /// The ONNX external-data file written beside the model, which must travel with it.
    pub external_data: Option<PathBuf>,
    /// Damaged checkpoints of a run folder that were passed over for an older one.
    pub skipped: Vec<String>,
}

impl Exported {
    /// One line for the user: what was written where, and the external-data file that must
    /// travel with an ONNX model too large for one file.
    pub fn summary(&self, direction: Direction, output: &Path) -> String {
        let step = self.step.map_or(String::new(), |s| format!(" of step {s}"));
        let mut line = format!(
            "wrote the {direction} generator{step} to {} ({:.1} MiB)",
            output.display(),
            self.bytes as f64 / (1 << 20) as f64
        );
        if let Some(data) = &self.external_data {
            line.push_str(&format!(
                "; its weights are in {}, which must stay beside it",
                data.display()
            ));
        }
        line
    }
}

/// Exports the `direction` generator of any model path (run folder, checkpoint, official
/// `.pt`, generator file) to `output`.
pub fn export_generator(
    source: &Path,
    direction: Direction,
    output: &Path,
    format: ExportFormat,
    dtype: StoreDtype,
) -> Result<Exported, WeightsError> {
    let loaded = load_generator::<Cpu>(source, direction, &Default::default())?;
    let origin = Some(loaded.path.display().to_string());
    let onnx = match (&loaded.generator, format) {
        (AnyGenerator::Pytorch(g), ExportFormat::Safetensors) => {
            save_generator_safetensors(
                output,
                g,
                &loaded.config,
                direction,
                loaded.step,
                origin,
                dtype,
            )?;
            None
        }
        (AnyGenerator::Tf(_, tensors), ExportFormat::Safetensors) => {
            let meta = FileMeta {
                kind: FileKind::Generator,
                config: loaded.config.clone(),
                direction: Some(direction),
                step: loaded.step,
                source: origin,
                variant: Variant::Tf,
            };
            safetensors_file::write(output, tensors, &meta, dtype)?;
            None
        }
        (AnyGenerator::Pytorch(g), ExportFormat::Onnx) => {
            Some(onnx::write_generator(output, g, &loaded.config, dtype)?)
        }
        (AnyGenerator::Tf(_, tensors), ExportFormat::Onnx) => Some(tf_onnx::write_generator(
            output,
            tensors,
            &loaded.config,
            dtype,
        )?),
    };
    let (bytes, external_data) = match onnx {
        Some(w) => (w.bytes, w.external_data),
        None => {
            let meta = std::fs::metadata(output).map_err(|e| WeightsError::io(output, e))?;
            (meta.len(), None)
        }
    };
    Ok(Exported {
        config: loaded.config,
        step: loaded.step,
        bytes,
        external_data,
        skipped: loaded.skipped,
    })
}

/// Writes one generator as a safetensors file with the official `state_dict` keys
/// (`DownBlock.1.weight`, ...) in `dtype`, recording the model config, the direction and, where
/// known, the training step and source in its metadata.
pub fn save_generator_safetensors<B: Backend>(
    path: &Path,
    generator: &Generator<B>,
    config: &ModelConfig,
    direction: Direction,
    step: Option<u64>,
    source: Option<String>,
    dtype: StoreDtype,
) -> Result<(), WeightsError> {
    let mut sd = StateDict::new();
    generator.save(&mut StateWriter::new(&mut sd));
    let meta = FileMeta {
        kind: FileKind::Generator,
        config: config.clone(),
        direction: Some(direction),
        step,
        source,
        variant: Variant::Pytorch,
    };
    safetensors_file::write(path, &sd, &meta, dtype)
}
