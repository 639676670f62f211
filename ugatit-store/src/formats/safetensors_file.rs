//! Our safetensors files: a full checkpoint (all six networks) or a generator-only export.
//!
//! Tensor names are the official UGATIT-pytorch keys (`genA2B.DownBlock.1.weight` in a
//! checkpoint, `DownBlock.1.weight` in a generator file), so `safetensors.torch.load_file` gives
//! a state dict the official code loads. The metadata holds the model config as JSON, the kind
//! of file, the direction of a generator and the training step. A safetensors file without our
//! metadata is read as a plain state dict with official keys.

use std::path::Path;

use burn::tensor::DType;
use ugatit_model::params::TensorSource;
use ugatit_model::{Direction, ModelConfig, StateDict, Variant};

use super::infer::infer_any;
use super::safetensors_reader::SafetensorsFile;
use super::{Contents, LoadedTensors, SourceFormat};
use crate::atomic::write_atomic;
use crate::error::WeightsError;

/// Value of the `format` metadata key in every file we write.
pub const FORMAT: &str = "ugatit-rs";
/// Version of the layout below; readers refuse newer ones.
pub const FORMAT_VERSION: u32 = 1;

/// What one of our files holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Checkpoint,
    Generator,
}

impl FileKind {
    fn as_str(self) -> &'static str {
        match self {
            FileKind::Checkpoint => "checkpoint",
            FileKind::Generator => "generator",
        }
    }
}

/// The metadata of one of our files.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    pub kind: FileKind,
    pub config: ModelConfig,
    /// A generator file's direction.
    pub direction: Option<Direction>,
    pub step: Option<u64>,
    /// Where an export came from (a run folder, checkpoint or `.pt`).
    pub source: Option<String>,
    /// The generator architecture (recorded for generator files).
    pub variant: Variant,
}

/// Precision of the tensors in a file we write. Readers always compute in float32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreDtype {
    #[default]
    F32,
    F16,
    BF16,
}

impl StoreDtype {
    pub(crate) fn burn(self) -> DType {
        match self {
            StoreDtype::F32 => DType::F32,
            StoreDtype::F16 => DType::F16,
            StoreDtype::BF16 => DType::BF16,
        }
    }

    /// The safetensors name: `F32`, `F16` or `BF16`.
    pub fn name(self) -> &'static str {
        match self {
            StoreDtype::F32 => "F32",
            StoreDtype::F16 => "F16",
            StoreDtype::BF16 => "BF16",
        }
    }
}

/// Writes `tensors` in `dtype` with `meta`, atomically: a temporary file in the same folder,
/// synced, then renamed over `path`, so a crash leaves either the old file or the new one.
pub fn write(
    path: &Path,
    tensors: &StateDict,
    meta: &FileMeta,
    dtype: StoreDtype,
) -> Result<(), WeightsError> {
    let mut md = serde_json::Map::new();
    let mut put = |k: &str, v: String| md.insert(k.to_string(), v.into());
    put("format", FORMAT.to_string());
    put("format_version", FORMAT_VERSION.to_string());
    put("kind", meta.kind.as_str().to_string());
    put(
        "model",
        serde_json::to_string(&meta.config).unwrap_or_default(),
    );
    if let Some(d) = meta.direction {
        put("direction", d.as_str().to_string());
    }
    if let Some(s) = meta.step {
        put("step", s.to_string());
    }
    if let Some(s) = &meta.source {
        put("source", s.clone());
    }
    if meta.kind == FileKind::Generator {
        put("variant", meta.variant.as_str().to_string());
    }
    let bytes = serialize(tensors, md, dtype);
    write_atomic(path, &bytes)
}

/// The safetensors layout (an 8-byte header length, a JSON header padded with spaces to a
/// multiple of 8, then the raw little-endian data), written here rather than by the safetensors
/// crate so that keys come out sorted: the same tensors always give the same bytes, and so the
/// same checksums. (The crate serialises its metadata map in random order.) Little-endian
/// hosts only, as burn's tensor bytes are native-endian.
fn serialize(
    tensors: &StateDict,
    metadata: serde_json::Map<String, serde_json::Value>,
    dtype: StoreDtype,
) -> Vec<u8> {
    let data: Vec<(&String, Vec<u8>)> = tensors
        .iter()
        .map(|(k, v)| (k, v.clone().convert_dtype(dtype.burn()).bytes.to_vec()))
        .collect();
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), metadata.into());
    let mut offset = 0usize;
    for ((k, bytes), v) in data.iter().zip(tensors.values()) {
        let entry = serde_json::json!({
            "dtype": dtype.name(),
            "shape": v.shape.to_vec(),
            "data_offsets": [offset, offset + bytes.len()],
        });
        header.insert((*k).clone(), entry);
        offset += bytes.len();
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, bytes) in &data {
        out.extend_from_slice(bytes);
    }
    out
}

/// What one of our safetensors files (or a plain one) holds, read from its header alone.
#[derive(Debug, Clone)]
pub struct Described {
    pub format: SourceFormat,
    pub format_version: Option<u32>,
    pub config: ModelConfig,
    pub img_size_known: bool,
    pub direction: Option<Direction>,
    pub step: Option<u64>,
    pub variant: Variant,
    /// Several networks with `genA2B.`-style prefixes, rather than one bare generator.
    pub is_model: bool,
}

/// Reads one of our files, or a plain safetensors state dict with official keys, whole.
pub fn read(path: &Path) -> Result<LoadedTensors, WeightsError> {
    let st = SafetensorsFile::open(path)?;
    let d = describe(&st)?;
    let all = st.network("");
    let mut sd = StateDict::new();
    for key in all.keys() {
        let data = all
            .read(&key)
            .map_err(|e| WeightsError::corrupt(path, format!("cannot read tensor {key} ({e})")))?;
        sd.insert(key, data);
    }
    Ok(LoadedTensors {
        path: path.to_path_buf(),
        format: d.format,
        format_version: d.format_version,
        contents: if d.is_model {
            Contents::Model(sd)
        } else {
            Contents::Generator(sd)
        },
        config: d.config,
        img_size_known: d.img_size_known,
        direction: d.direction,
        step: d.step,
        skipped: Vec::new(),
        variant: d.variant,
    })
}

/// Describes an open file: by our metadata, or by its tensors' shapes for a plain file.
pub fn describe(st: &SafetensorsFile) -> Result<Described, WeightsError> {
    let path = st.path();
    let md = st.metadata();
    if md.get("format").map(String::as_str) != Some(FORMAT) {
        let (is_model, inferred) =
            infer_any(&st.network("")).map_err(|reason| WeightsError::not_ugatit(path, reason))?;
        return Ok(Described {
            format: SourceFormat::PlainSafetensors,
            format_version: None,
            config: inferred.config,
            img_size_known: inferred.img_size_known,
            direction: None,
            step: None,
            variant: Variant::default(),
            is_model,
        });
    }
    let bad = |what: &str| WeightsError::corrupt(path, format!("bad metadata: {what}"));
    let version: u32 = md
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("no format_version"))?;
    if version > FORMAT_VERSION {
        return Err(WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "written in format version {version} by a newer ugatit-rs; this one reads up to {FORMAT_VERSION}"
            ),
        });
    }
    let config: ModelConfig = md
        .get("model")
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| bad("no readable model config"))?;
    let kind = md.get("kind").map(String::as_str);
    let checked = if kind == Some("generator") {
        config.validate_generator()
    } else {
        config.validate()
    };
    checked.map_err(|cause| WeightsError::Config {
        path: path.to_path_buf(),
        cause,
    })?;
    let direction = match md.get("direction") {
        Some(d) => Some(d.parse::<Direction>().map_err(|e| bad(&e))?),
        None => None,
    };
    let step = md.get("step").and_then(|s| s.parse().ok());
    let variant = match md.get("variant").map(String::as_str) {
        None | Some("pytorch") => Variant::Pytorch,
        Some("tf") => Variant::Tf,
        Some(other) => return Err(bad(&format!("unknown variant {other:?}"))),
    };
    let (format, is_model) = match kind {
        Some("checkpoint") => (SourceFormat::Checkpoint, true),
        Some("generator") => (SourceFormat::GeneratorFile, false),
        other => return Err(bad(&format!("unknown kind {other:?}"))),
    };
    Ok(Described {
        format,
        format_version: Some(version),
        config,
        img_size_known: true,
        direction,
        step,
        variant,
        is_model,
    })
}
