//! The values of a TensorFlow tensor-bundle index (`tf.train.Saver` checkpoints), with the field
//! numbers of the official `tensorflow/core/protobuf/tensor_bundle.proto` and
//! `tensorflow/core/framework/tensor_shape.proto` (proto3).

use prost::{Enumeration, Message};

/// `BundleHeaderProto`: the value under the index's empty key.
#[derive(Clone, PartialEq, Message)]
pub struct BundleHeaderProto {
    /// `num_shards = 1`: how many `PREFIX.data-NNNNN-of-MMMMM` files there are.
    #[prost(int32, tag = "1")]
    pub num_shards: i32,
    /// `endianness = 2`: an [`Endianness`] of the data files' bytes.
    #[prost(enumeration = "Endianness", tag = "2")]
    pub endianness: i32,
}

/// `BundleHeaderProto.Endianness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum Endianness {
    /// `LITTLE = 0`.
    Little = 0,
    /// `BIG = 1`.
    Big = 1,
}

/// `BundleEntryProto`: where one tensor's bytes lie and how to check them.
#[derive(Clone, PartialEq, Message)]
pub struct BundleEntryProto {
    /// `dtype = 1`: a `tensorflow.DataType` code (`DT_FLOAT = 1`).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// `shape = 2`.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
    /// `shard_id = 3`.
    #[prost(int32, tag = "3")]
    pub shard_id: i32,
    /// `offset = 4`: the first byte in the shard.
    #[prost(int64, tag = "4")]
    pub offset: i64,
    /// `size = 5`: the byte count.
    #[prost(int64, tag = "5")]
    pub size: i64,
    /// `crc32c = 6`: the masked CRC-32C of the bytes.
    #[prost(fixed32, tag = "6")]
    pub crc32c: u32,
    /// `slices = 7`: set for a partitioned variable, whose bytes lie in other entries.
    #[prost(message, repeated, tag = "7")]
    pub slices: Vec<TensorSliceProto>,
}

/// `TensorShapeProto` (tensor_shape.proto).
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    /// `dim = 2`.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    /// `unknown_rank = 3`.
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

pub mod tensor_shape_proto {
    /// `TensorShapeProto.Dim`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// `size = 1`: -1 for an unknown size.
        #[prost(int64, tag = "1")]
        pub size: i64,
    }
}

/// `TensorSliceProto` (tensor_slice.proto): only its presence is read, since sliced
/// (partitioned) variables are refused; its `extent = 1` entries are left unparsed.
#[derive(Clone, PartialEq, Message)]
pub struct TensorSliceProto {}
