//! Reading a safetensors file tensor by tensor: only the header is parsed up front, and each
//! tensor is read from its byte range when asked for. A generator is built from a checkpoint
//! without reading the other five networks, and the 268M-element `FC.0` weight of a full
//! generator is read transposed in column blocks, so it is never held twice.
//!
//! The layout (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
//! mapping each name to `{dtype, shape, data_offsets: [begin, end]}` (offsets into the data that
//! follows the header) plus an optional `__metadata__` map of strings, then the raw
//! little-endian tensor bytes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use serde::Deserialize;
use ugatit_model::params::{transpose_block, TensorSource};

use crate::error::WeightsError;

/// Headers larger than this are refused before being read (real ones are tens of kilobytes).
const MAX_HEADER: u64 = 100 << 20;
/// Columns read per block when reading a matrix transposed.
const BLOCK_COLS: usize = 4096;

/// One tensor's entry in the header.
#[derive(Debug, Clone, Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// An open safetensors file: its header, and the file to read tensors from.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    file: File,
    /// Byte offset of the data section.
    data_start: u64,
    entries: BTreeMap<String, (DType, Entry)>,
    metadata: HashMap<String, String>,
}

impl SafetensorsFile {
    /// Opens `path` and checks its header: every tensor's dtype is one we read (F32, F16,
    /// BF16), its byte range matches its shape and lies inside the file.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let file = File::open(path).map_err(|e| WeightsError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| WeightsError::io(path, e))?
            .len();
        let damaged = |what: String| {
            WeightsError::corrupt(
                path,
                format!("truncated or damaged safetensors file ({what})"),
            )
        };
        // A safetensors file starts with the 8-byte length of its JSON header.
        let mut start = [0u8; 9];
        if len < 10 || read_exact_at(&file, &mut start, 0).is_err() || start[8] != b'{' {
            return Err(WeightsError::not_ugatit(
                path,
                "neither a PyTorch file nor a safetensors file, nor a run or checkpoint folder",
            ));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&start[..8]);
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER || 8 + n > len {
            return Err(damaged(format!("a header of {n} bytes in a file of {len}")));
        }
        let mut header = vec![0u8; n as usize];
        read_exact_at(&file, &mut header, 8).map_err(|e| damaged(e.to_string()))?;
        let mut raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| damaged(e.to_string()))?;
        let metadata = match raw.remove("__metadata__") {
            Some(m) => serde_json::from_value(m).map_err(|e| damaged(e.to_string()))?,
            None => HashMap::new(),
        };
        let data_start = 8 + n;
        let mut entries = BTreeMap::new();
        for (name, value) in raw {
            let entry: Entry = serde_json::from_value(value)
                .map_err(|e| damaged(format!("tensor {name}: {e}")))?;
            let dtype = match entry.dtype.as_str() {
                "F32" => DType::F32,
                "F16" => DType::F16,
                "BF16" => DType::BF16,
                other => {
                    return Err(WeightsError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!(
                            "tensor {name} has dtype {other}; only F32, F16 and BF16 are read"
                        ),
                    })
                }
            };
            let [begin, end] = entry.data_offsets;
            let elements = entry
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
            let want = elements.and_then(|e| e.checked_mul(dtype.size() as u64));
            if begin > end || Some(end - begin) != want {
                return Err(damaged(format!(
                    "tensor {name}: bytes {begin}..{end} do not hold shape {:?}",
                    entry.shape
                )));
            }
            if data_start + end > len {
                return Err(damaged(format!(
                    "tensor {name} ends at byte {}, past the end of the file ({len})",
                    data_start + end
                )));
            }
            entries.insert(name, (dtype, entry));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            data_start,
            entries,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `__metadata__` map.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The tensors whose names start with `prefix`, with the prefix removed (`genA2B.` gives
    /// one network of a checkpoint).
    pub fn network<'a>(&'a self, prefix: &str) -> Network<'a> {
        Network {
            file: self,
            prefix: prefix.to_string(),
        }
    }

    fn entry(&self, key: &str) -> Result<&(DType, Entry), String> {
        self.entries
            .get(key)
            .ok_or_else(|| format!("no tensor {key}"))
    }

    /// Reads `key` whole, converted to float32.
    fn read_full(&self, key: &str) -> Result<TensorData, String> {
        let (dtype, e) = self.entry(key)?;
        let [begin, end] = e.data_offsets;
        let mut bytes = vec![0u8; (end - begin) as usize];
        read_exact_at(&self.file, &mut bytes, self.data_start + begin)
            .map_err(|err| err.to_string())?;
        Ok(TensorData::from_bytes_vec(bytes, e.shape.clone(), *dtype).convert::<f32>())
    }

    /// Reads the `[rows, cols]` float32 matrix `key` as `[cols, rows]`, `BLOCK_COLS` columns at
    /// a time: each block's rows are read from their places in the file and transposed into
    /// the result, so memory holds the result and one block.
    fn read_transposed_blocked(&self, key: &str) -> Result<TensorData, String> {
        let (dtype, e) = self.entry(key)?;
        let &[rows, cols] = e.shape.as_slice() else {
            return Err(format!("expected a matrix, found shape {:?}", e.shape));
        };
        if *dtype != DType::F32 {
            // Half-precision files are half the size: converting whole is cheap enough.
            let data = self.read_full(key)?;
            return ugatit_model::StateDict::from([(key.to_string(), data)]).read_transposed(key);
        }
        let base = self.data_start + e.data_offsets[0];
        let mut out = vec![0f32; rows * cols];
        let mut block = vec![0f32; rows * BLOCK_COLS.min(cols)];
        let mut bytes = vec![0u8; 4 * BLOCK_COLS.min(cols)];
        for first in (0..cols).step_by(BLOCK_COLS) {
            let n = BLOCK_COLS.min(cols - first);
            for r in 0..rows {
                let at = base + 4 * (r * cols + first) as u64;
                read_exact_at(&self.file, &mut bytes[..4 * n], at).map_err(|e| e.to_string())?;
                for (dst, src) in block[r * n..][..n].iter_mut().zip(bytes.chunks_exact(4)) {
                    *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
                }
            }
            transpose_block(&block[..rows * n], rows, n, first, &mut out);
        }
        Ok(TensorData::new(out, [cols, rows]))
    }
}

/// The tensors of one network of a [`SafetensorsFile`], read on demand.
#[derive(Debug, Clone)]
pub struct Network<'a> {
    file: &'a SafetensorsFile,
    prefix: String,
}

impl Network<'_> {
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl TensorSource for Network<'_> {
    fn keys(&self) -> Vec<String> {
        self.file
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_string))
            .collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.file
            .entries
            .get(&self.full_key(key))
            .map(|(_, e)| e.shape.clone())
    }

    fn read(&self, key: &str) -> Result<TensorData, String> {
        self.file.read_full(&self.full_key(key))
    }

    fn read_transposed(&self, key: &str) -> Result<TensorData, String> {
        self.file.read_transposed_blocked(&self.full_key(key))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
