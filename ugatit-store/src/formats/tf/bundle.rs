//! TensorFlow 1 tensor bundles (`tf.train.Saver` checkpoints): `PREFIX.index`, a LevelDB-style
//! table mapping each tensor name to a `BundleEntryProto` (dtype, shape, shard, offset, size,
//! masked CRC-32C; [`crate::proto::tf`]) and the empty key to a `BundleHeaderProto`, and
//! `PREFIX.data-NNNNN-of-MMMMM` shards holding the raw little-endian bytes.
//! Only the tensors asked for are read, by seeking, so an 8 GB checkpoint with Adam slots costs
//! no more memory than the tensors taken from it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::tf::{BundleEntryProto, BundleHeaderProto, Endianness};

/// A problem with a bundle, as a message naming what is wrong (the caller adds the path).
pub type BundleResult<T> = Result<T, String>;

/// `leveldb` table magic number, at the end of the index file.
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER_LEN: usize = 48;
/// `tensorflow.DataType` codes of the dtypes read.
const DT_FLOAT: u64 = 1;

/// Where one tensor lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dtype: u64,
    pub shape: Vec<usize>,
    pub shard: u64,
    pub offset: u64,
    pub size: u64,
    pub crc32c: u32,
}

/// An opened bundle: the index in memory, data shards read on demand.
#[derive(Debug)]
pub struct Bundle {
    prefix: PathBuf,
    num_shards: u64,
    pub entries: BTreeMap<String, Entry>,
}

/// LevelDB's `GetVarint64` (util/coding.cc): seven bits a byte, low first, at `*pos`, advancing
/// it. The table layout is LevelDB's own, not protobuf, though the varints look alike.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn block_handle(buf: &[u8], pos: &mut usize) -> BundleResult<(usize, usize)> {
    let off = varint(buf, pos).ok_or("bad block handle")?;
    let len = varint(buf, pos).ok_or("bad block handle")?;
    Ok((off as usize, len as usize))
}

/// The key/value pairs of one table block (prefix-compressed keys, restart array at the end).
fn block_entries(block: &[u8]) -> BundleResult<Vec<(Vec<u8>, &[u8])>> {
    if block.len() < 4 {
        return Err("truncated table block".into());
    }
    let restarts = u32::from_le_bytes(
        block[block.len() - 4..]
            .try_into()
            .map_err(|_| "bad block")?,
    ) as usize;
    let end = block
        .len()
        .checked_sub(4 + 4 * restarts)
        .ok_or("bad restart array in the index")?;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut key: Vec<u8> = Vec::new();
    while pos < end {
        let shared = varint(block, &mut pos).ok_or("bad entry")? as usize;
        let unshared = varint(block, &mut pos).ok_or("bad entry")? as usize;
        let vlen = varint(block, &mut pos).ok_or("bad entry")? as usize;
        let tail_end = pos.checked_add(unshared).ok_or("bad entry")?;
        let tail = block.get(pos..tail_end).ok_or("truncated entry")?;
        if shared > key.len() {
            return Err("bad key prefix in the index".into());
        }
        key.truncate(shared);
        key.extend_from_slice(tail);
        pos = tail_end;
        let value_end = pos.checked_add(vlen).ok_or("bad entry")?;
        let value = block.get(pos..value_end).ok_or("truncated entry")?;
        pos = value_end;
        out.push((key.clone(), value));
    }
    Ok(out)
}

fn read_block(index: &[u8], (off, len): (usize, usize)) -> BundleResult<&[u8]> {
    let end = off.checked_add(len).ok_or("bad block handle")?;
    let block = index.get(off..end).ok_or("the index is truncated")?;
    // Each block is followed by a compression byte (0: none) and its CRC.
    match index.get(end) {
        Some(0) => Ok(block),
        Some(_) => Err("compressed index blocks are not supported".into()),
        None => Err("the index is truncated".into()),
    }
}

fn parse_entry(value: &[u8]) -> BundleResult<Entry> {
    let e = BundleEntryProto::decode(value)
        .map_err(|err| format!("malformed BundleEntryProto ({err})"))?;
    if !e.slices.is_empty() {
        return Err("partitioned (sliced) variables are not supported".into());
    }
    let whole = |v: i64, what: &str| u64::try_from(v).map_err(|_| format!("negative {what} {v}"));
    let shape = e.shape.map(|s| s.dim).unwrap_or_default();
    Ok(Entry {
        dtype: whole(e.dtype.into(), "dtype code")?,
        shape: shape
            .iter()
            .map(|d| {
                usize::try_from(d.size).map_err(|_| format!("unknown or negative size {}", d.size))
            })
            .collect::<BundleResult<_>>()?,
        shard: whole(e.shard_id.into(), "shard")?,
        offset: whole(e.offset, "offset")?,
        size: whole(e.size, "size")?,
        crc32c: e.crc32c,
    })
}

/// The shard count of a `BundleHeaderProto`; the data must be little-endian.
fn parse_header(value: &[u8]) -> BundleResult<u64> {
    let h = BundleHeaderProto::decode(value)
        .map_err(|err| format!("malformed BundleHeaderProto ({err})"))?;
    if h.endianness != Endianness::Little as i32 {
        return Err("big-endian checkpoints are not supported".into());
    }
    Ok(u64::try_from(h.num_shards).unwrap_or(0).max(1))
}

/// TensorFlow's CRC mask (`crc32c::Unmask` inverted).
fn unmask(masked: u32) -> u32 {
    let rot = masked.wrapping_sub(0xa282_ead8);
    rot.rotate_left(15)
}

impl Bundle {
    /// Opens `PREFIX.index`.
    pub fn open(prefix: &Path) -> BundleResult<Self> {
        let index_path = PathBuf::from(format!("{}.index", prefix.display()));
        let index =
            std::fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?;
        if index.len() < FOOTER_LEN {
            return Err(format!(
                "{}: too short for a checkpoint index",
                index_path.display()
            ));
        }
        let footer = &index[index.len() - FOOTER_LEN..];
        let magic = u64::from_le_bytes(footer[40..48].try_into().map_err(|_| "bad footer")?);
        if magic != TABLE_MAGIC {
            return Err(format!(
                "{}: not a TensorFlow checkpoint index",
                index_path.display()
            ));
        }
        let mut pos = 0;
        let _metaindex = block_handle(footer, &mut pos)?;
        let index_handle = block_handle(footer, &mut pos)?;
        let mut entries = BTreeMap::new();
        let mut num_shards = 1;
        for (_, handle) in block_entries(read_block(&index, index_handle)?)? {
            let mut p = 0;
            let data_handle = block_handle(handle, &mut p)?;
            for (key, value) in block_entries(read_block(&index, data_handle)?)? {
                if key.is_empty() {
                    num_shards = parse_header(value)?;
                    continue;
                }
                let name = String::from_utf8_lossy(&key).to_string();
                let entry = parse_entry(value).map_err(|e| format!("{name}: {e}"))?;
                entries.insert(name, entry);
            }
        }
        Ok(Self {
            prefix: prefix.to_path_buf(),
            num_shards,
            entries,
        })
    }

    fn shard_path(&self, shard: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}.data-{shard:05}-of-{:05}",
            self.prefix.display(),
            self.num_shards
        ))
    }

    /// Reads one float32 tensor, verifying its size and masked CRC-32C.
    pub fn read_f32(&self, name: &str) -> BundleResult<(Vec<usize>, Vec<f32>)> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| format!("no tensor {name}"))?;
        if e.dtype != DT_FLOAT {
            return Err(format!(
                "tensor {name} has dtype code {}, not float32",
                e.dtype
            ));
        }
        let n: usize = e.shape.iter().product();
        if e.size != 4 * n as u64 {
            return Err(format!(
                "tensor {name}: {} bytes for shape {:?}",
                e.size, e.shape
            ));
        }
        let path = self.shard_path(e.shard);
        let mut f = File::open(&path)
            .map_err(|err| format!("{}: {err} (a missing data shard)", path.display()))?;
        let len = f.metadata().map_err(|err| err.to_string())?.len();
        if e.offset.checked_add(e.size).is_none_or(|end| end > len) {
            return Err(format!(
                "{}: truncated ({len} bytes, but tensor {name} ends at {})",
                path.display(),
                e.offset + e.size
            ));
        }
        f.seek(SeekFrom::Start(e.offset))
            .map_err(|err| err.to_string())?;
        let mut bytes = vec![0u8; e.size as usize];
        f.read_exact(&mut bytes)
            .map_err(|err| format!("{}: {err}", path.display()))?;
        if crc32c::crc32c(&bytes) != unmask(e.crc32c) {
            return Err(format!(
                "tensor {name}: CRC mismatch in {} (the file is damaged)",
                path.display()
            ));
        }
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((e.shape.clone(), values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tf::tensor_shape_proto::Dim;
    use crate::proto::tf::{TensorShapeProto, TensorSliceProto};

    #[test]
    fn malformed_indexes_are_errors_not_panics() {
        let dir = std::env::temp_dir().join(format!("ugatit-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("x");
        let index = PathBuf::from(format!("{}.index", prefix.display()));
        let mut footer = vec![0xffu8; 40];
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        for body in [
            vec![],
            vec![1, 2, 3],
            footer.clone(),
            [vec![0u8; 100], footer].concat(),
        ] {
            std::fs::write(&index, &body).unwrap();
            assert!(Bundle::open(&prefix).is_err());
        }
        let block = [5u8, 200, 200, 1, 0, 0, 0, 0];
        assert!(block_entries(&block).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entries_and_headers_decode_and_what_we_cannot_read_is_refused() {
        let entry = BundleEntryProto {
            dtype: 1,
            shape: Some(TensorShapeProto {
                dim: [3, 4].map(|size| Dim { size }).to_vec(),
                unknown_rank: false,
            }),
            shard_id: 1,
            offset: 48,
            size: 48,
            crc32c: 0xdead_beef,
            slices: Vec::new(),
        };
        let want = Entry {
            dtype: 1,
            shape: vec![3, 4],
            shard: 1,
            offset: 48,
            size: 48,
            crc32c: 0xdead_beef,
        };
        assert_eq!(parse_entry(&entry.encode_to_vec()), Ok(want));
        let sliced = BundleEntryProto {
            slices: vec![TensorSliceProto {}],
            ..entry.clone()
        };
        let e = parse_entry(&sliced.encode_to_vec()).unwrap_err();
        assert!(e.contains("partitioned"), "{e}");
        let unknown = BundleEntryProto {
            shape: Some(TensorShapeProto {
                dim: vec![Dim { size: -1 }],
                unknown_rank: false,
            }),
            ..entry
        };
        assert!(parse_entry(&unknown.encode_to_vec()).is_err());
        assert!(parse_entry(&[0x0a, 5, 1]).is_err());

        let header = |num_shards, endianness: Endianness| BundleHeaderProto {
            num_shards,
            endianness: endianness as i32,
        };
        assert_eq!(
            parse_header(&header(3, Endianness::Little).encode_to_vec()),
            Ok(3)
        );
        assert_eq!(
            parse_header(&header(0, Endianness::Little).encode_to_vec()),
            Ok(1)
        );
        let e = parse_header(&header(1, Endianness::Big).encode_to_vec()).unwrap_err();
        assert!(e.contains("big-endian"), "{e}");
    }
}
