//! An ONNX model on disk. A protobuf message cannot pass 2 GiB, which a full generator does from
//! img_size ~364 (its MLP's first layer grows with the square of the size), so above a limit the
//! weights go to `<file name>.data` beside the model as ONNX external data (onnx.proto:
//! `TensorProto.external_data` with `location`, `offset`, `length`; `data_location = EXTERNAL`).
//! onnx and onnxruntime read it from the model's folder, so the two files travel together.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::atomic::write_atomic;
use crate::error::WeightsError;
use crate::proto::onnx::{DataLocation, ModelProto, StringStringEntryProto, TensorProto};

/// Serialised size above which the weights move out: protobuf's 2 GiB limit less a margin.
pub const INLINE_LIMIT: u64 = (2 << 30) - (64 << 20);
/// Smaller tensors stay in the model (onnx's own `size_threshold` default).
const MIN_EXTERNAL_BYTES: usize = 1024;
/// External tensors start at multiples of the page size, so readers can memory-map them
/// (onnx.proto: offsets SHOULD be multiples of 4096).
const ALIGN: usize = 4096;

/// What writing a model produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Bytes written in all: the model file and its external data.
    pub bytes: u64,
    /// The external-data file, when the model needed one.
    pub external_data: Option<PathBuf>,
}

/// The external-data file of the model at `path`: `<file name>.data` beside it.
pub fn external_data_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".data");
    path.with_file_name(name)
}

/// Writes `model` to `path`, atomically. If it would serialise to more than `inline_limit`
/// bytes ([`INLINE_LIMIT`] for an export), its initialisers' bytes first go to
/// [`external_data_path`], written (atomically) before the model that names it. An inline
/// model removes the external-data file an earlier export to `path` left.
pub fn write(
    path: &Path,
    mut model: ModelProto,
    inline_limit: u64,
) -> Result<Written, WeightsError> {
    let data_path = external_data_path(path);
    if model.encoded_len() as u64 <= inline_limit {
        let bytes = model.encode_to_vec();
        write_atomic(path, &bytes)?;
        match std::fs::remove_file(&data_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(WeightsError::io(&data_path, e))
            }
            _ => {}
        }
        return Ok(Written {
            bytes: bytes.len() as u64,
            external_data: None,
        });
    }
    // The location is a string in the model, so it must be the file's exact (UTF-8) name.
    let location = data_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| WeightsError::Unsupported {
            path: path.to_path_buf(),
            reason: "a model this large needs external data, which needs a UTF-8 file name".into(),
        })?
        .to_string();
    let data = externalise(&mut model, &location);
    write_atomic(&data_path, &data)?;
    let bytes = model.encode_to_vec();
    write_atomic(path, &bytes)?;
    Ok(Written {
        bytes: (bytes.len() + data.len()) as u64,
        external_data: Some(data_path),
    })
}

/// Moves the raw bytes of every initialiser of at least [`MIN_EXTERNAL_BYTES`] into the
/// returned buffer, each at an [`ALIGN`]ed offset, and points the tensor at it.
fn externalise(model: &mut ModelProto, location: &str) -> Vec<u8> {
    let Some(graph) = model.graph.as_mut() else {
        return Vec::new();
    };
    let large = |t: &&mut TensorProto| t.raw_data.len() >= MIN_EXTERNAL_BYTES;
    let total = graph
        .initializer
        .iter_mut()
        .filter(large)
        .fold(0usize, |end, t| {
            end.next_multiple_of(ALIGN) + t.raw_data.len()
        });
    let mut data = Vec::with_capacity(total);
    for t in graph.initializer.iter_mut().filter(large) {
        data.resize(data.len().next_multiple_of(ALIGN), 0);
        let raw = std::mem::take(&mut t.raw_data);
        let entry = |key: &str, value: String| StringStringEntryProto {
            key: key.into(),
            value,
        };
        t.external_data = vec![
            entry("location", location.into()),
            entry("offset", data.len().to_string()),
            entry("length", raw.len().to_string()),
        ];
        t.data_location = DataLocation::External as i32;
        data.extend_from_slice(&raw);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::onnx::{DataType, GraphProto};

    fn tensor(name: &str, n: usize) -> TensorProto {
        TensorProto {
            dims: vec![n as i64],
            data_type: DataType::Float as i32,
            name: name.into(),
            raw_data: (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    fn model() -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                initializer: vec![tensor("a", 2), tensor("b", 1500), tensor("c", 300)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn external(t: &TensorProto, key: &str) -> String {
        let e = t.external_data.iter().find(|e| e.key == key).unwrap();
        e.value.clone()
    }

    #[test]
    fn large_models_move_their_weights_to_an_aligned_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.onnx");
        let written = write(&path, model(), 0).unwrap();
        let data_path = dir.path().join("g.onnx.data");
        assert_eq!(written.external_data.as_deref(), Some(data_path.as_path()));
        let data = std::fs::read(&data_path).unwrap();
        let file = std::fs::read(&path).unwrap();
        assert_eq!(written.bytes, (file.len() + data.len()) as u64);

        let read = ModelProto::decode(file.as_slice()).unwrap();
        let [a, b, c] = &read.graph.unwrap().initializer[..] else {
            panic!("three initialisers")
        };
        assert_eq!(a, &tensor("a", 2), "small tensors stay inline");
        for (t, offset) in [(b, 0), (c, 8192)] {
            assert_eq!(t.data_location, DataLocation::External as i32);
            assert!(t.raw_data.is_empty());
            assert_eq!(external(t, "location"), "g.onnx.data");
            assert_eq!(external(t, "offset"), offset.to_string());
            let len: usize = external(t, "length").parse().unwrap();
            let want = tensor(&t.name, t.dims[0] as usize).raw_data;
            assert_eq!(&data[offset..offset + len], want.as_slice());
        }
    }

    #[test]
    fn small_models_stay_whole_and_drop_an_old_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.onnx");
        write(&path, model(), 0).unwrap();
        let written = write(&path, model(), INLINE_LIMIT).unwrap();
        assert_eq!(written.external_data, None);
        assert!(!dir.path().join("g.onnx.data").exists());
        let read = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        assert_eq!(read, model());
    }
}
