//! ONNX's `ModelProto` and the messages under it that a generator export writes, with the
//! field numbers and types of the official `onnx/onnx.proto` (proto2).
//!
//! proto2 details kept: repeated scalars are written unpacked (`packed = "false"`), as the
//! official serialiser does, and attribute values that may be zero (`AttributeProto.f`, `.i`)
//! keep their presence (`Option`). Strings and numbers we never leave at zero are plain fields.

use prost::{Enumeration, Message, Oneof};

/// `ModelProto`: the whole `.onnx` file.
#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    /// `ir_version = 1`: the IR version of the file format (8 goes with opset 17).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// `producer_name = 2`.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// `producer_version = 3`.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// `graph = 7`.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// `opset_import = 8`.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// `OperatorSetIdProto`: an operator set the graph uses.
#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    /// `domain = 1`: empty for the default `ai.onnx` operators.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// `version = 2`.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`: nodes in topological order, initialisers, inputs and outputs.
#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    /// `node = 1`.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// `name = 2`.
    #[prost(string, tag = "2")]
    pub name: String,
    /// `initializer = 5`: the weights and constants.
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// `input = 11`.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// `output = 12`.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    /// `input = 1`: value names; an empty name is an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// `output = 2`.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// `name = 3`.
    #[prost(string, tag = "3")]
    pub name: String,
    /// `op_type = 4`.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// `attribute = 5`.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto`: a named attribute whose `type` says which value field is set.
#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    /// `name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `f = 2`.
    #[prost(float, optional, tag = "2")]
    pub f: Option<f32>,
    /// `i = 3`.
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    /// `s = 4`: UTF-8 bytes.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    /// `ints = 8`.
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
    /// `type = 20`: an [`AttributeType`].
    #[prost(enumeration = "AttributeType", optional, tag = "20")]
    pub r#type: Option<i32>,
}

/// `AttributeProto.AttributeType`, the codes used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum AttributeType {
    /// `UNDEFINED = 0`: the default a message starts with.
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Ints = 7,
}

/// `TensorProto`: a tensor's type, shape and little-endian bytes, either in `raw_data` or, with
/// `data_location` `EXTERNAL`, in a file named by `external_data`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// `dims = 1`.
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// `data_type = 2`: a [`DataType`] code.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// `name = 8`.
    #[prost(string, tag = "8")]
    pub name: String,
    /// `raw_data = 9`.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// `external_data = 13`: `location` (relative to the model's folder), `offset`, `length`,
    /// integers written as decimal strings.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// `data_location = 14`: a [`DataLocation`].
    #[prost(enumeration = "DataLocation", tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.DataType`, the codes used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// `UNDEFINED = 0`: the default a message starts with.
    Undefined = 0,
    Float = 1,
    Int64 = 7,
    Float16 = 10,
    Bfloat16 = 16,
}

/// `TensorProto.DataLocation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Enumeration)]
#[repr(i32)]
pub enum DataLocation {
    /// `DEFAULT = 0`: the bytes are in the message.
    Default = 0,
    /// `EXTERNAL = 1`: the bytes are where `external_data` says.
    External = 1,
}

/// `StringStringEntryProto`: a key/value pair.
#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value = 2`.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `ValueInfoProto`: a graph input's or output's name and type.
#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    /// `name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `type = 2`.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`: here always a tensor type.
#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    /// `oneof value`.
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
}

pub mod type_proto {
    use super::*;

    /// `TypeProto.value`, the member used here.
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Value {
        /// `tensor_type = 1`.
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, Message)]
    pub struct Tensor {
        /// `elem_type = 1`: a [`DataType`] code.
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        /// `shape = 2`.
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    /// `dim = 1`.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

pub mod tensor_shape_proto {
    use super::*;

    /// `TensorShapeProto.Dimension`: a fixed size or a symbolic (dynamic) one.
    #[derive(Clone, PartialEq, Message)]
    pub struct Dimension {
        /// `oneof value`.
        #[prost(oneof = "Value", tags = "1, 2")]
        pub value: Option<Value>,
    }

    /// `TensorShapeProto.Dimension.value`.
    #[derive(Clone, PartialEq, Oneof)]
    pub enum Value {
        /// `dim_value = 1`.
        #[prost(int64, tag = "1")]
        DimValue(i64),
        /// `dim_param = 2`.
        #[prost(string, tag = "2")]
        DimParam(String),
    }
}
