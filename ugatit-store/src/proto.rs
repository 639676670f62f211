//! The protobuf messages this crate reads and writes, as `prost` derive structs written from
//! the official `.proto` files' field numbers (no `protoc`, no generated code): only the
//! messages and fields used here. `prost` ignores fields a struct does not name, so reading a
//! file with more in it is fine.

pub mod onnx;
pub mod tf;
