//! Weight files, each read into one in-memory [`StateDict`] with what is known of its
//! architecture: official UGATIT-pytorch `.pt` files ([`pytorch`]), our safetensors files
//! ([`safetensors_file`]: a full checkpoint or a generator-only export) and TensorFlow U-GAT-IT
//! checkpoints ([`tf`]). Architectures are read from metadata where we wrote it, and inferred
//! from tensor shapes otherwise ([`infer`]).

pub mod infer;
pub mod pytorch;
pub mod safetensors_file;
pub mod safetensors_reader;
pub mod tf;

use std::io::Read;
use std::path::{Path, PathBuf};

use ugatit_model::{Direction, ModelConfig, StateDict, Variant};

use crate::error::WeightsError;

/// What was found at a model path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFormat {
    /// An official UGATIT-pytorch `torch.save` file.
    OfficialPytorch,
    /// Our full checkpoint (all six networks).
    Checkpoint,
    /// Our generator-only export.
    GeneratorFile,
    /// A plain safetensors state dict with official keys and no metadata of ours.
    PlainSafetensors,
}

/// Tensors read from a model path, with what is known of their architecture.
#[derive(Debug, Clone)]
pub struct LoadedTensors {
    /// The file the tensors came from (a run folder resolves to its newest checkpoint).
    pub path: PathBuf,
    pub format: SourceFormat,
    /// The format version the file records (our safetensors files), not this binary's.
    pub format_version: Option<u32>,
    pub contents: Contents,
    pub config: ModelConfig,
    /// False when `config.img_size` is a guess: a light generator's shapes do not fix it.
    pub img_size_known: bool,
    /// For a generator-only source, the direction it translates (None when unknown).
    pub direction: Option<Direction>,
    /// Training step, where the source records one.
    pub step: Option<u64>,
    /// Newer checkpoints of a run folder that failed verification and were passed over.
    pub skipped: Vec<String>,
    /// The generator architecture the tensors are for.
    pub variant: Variant,
}

/// The tensors of a model path.
#[derive(Debug, Clone)]
pub enum Contents {
    /// Several networks, keys prefixed by network (`genA2B.DownBlock.1.weight`).
    Model(StateDict),
    /// One generator, keys without a prefix (`DownBlock.1.weight`).
    Generator(StateDict),
}

/// Whether `file` is a PyTorch file (a zip or a pickle, by its first bytes); anything else is
/// taken as safetensors. An empty file is no model at all.
pub fn is_pytorch(file: &Path) -> Result<bool, WeightsError> {
    let mut magic = [0u8; 9];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| WeightsError::io(file, e))?;
    if n == 0 {
        return Err(WeightsError::not_ugatit(file, "the file is empty"));
    }
    // A pickle starts with PROTO (0x80) and its version (2 to 5). A safetensors file starts with
    // its header's length, whose low byte may be 0x80 too: its 9th byte, `{`, tells them apart.
    let pickle = magic[0] == 0x80 && (2..=5).contains(&magic[1]) && magic[8] != b'{';
    Ok(magic.starts_with(b"PK\x03\x04") || pickle)
}

/// Reads one weights file whole, recognising its format by [`is_pytorch`].
pub fn read_file(file: &Path) -> Result<LoadedTensors, WeightsError> {
    if is_pytorch(file)? {
        pytorch::read(file)
    } else {
        safetensors_file::read(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safetensors_header_length_ending_in_0x80_is_not_a_pickle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let mut st = 0x80u64.to_le_bytes().to_vec();
        st.extend_from_slice(br#"{"__metadata__":{}}"#);
        std::fs::write(&path, &st).unwrap();
        assert!(!is_pytorch(&path).unwrap());
        std::fs::write(&path, b"\x80\x02}q\x00(X\x06\x00\x00\x00").unwrap();
        assert!(is_pytorch(&path).unwrap());
        std::fs::write(&path, b"PK\x03\x04rest").unwrap();
        assert!(is_pytorch(&path).unwrap());
    }
}
