//! Every way a U-GAT-IT model is stored, layered so that each part uses only the ones above it:
//!
//! 1. [`formats`]: weight files read into an in-memory state dict: official UGATIT-pytorch
//!    `.pt`, our safetensors files, TensorFlow U-GAT-IT checkpoints; architecture inference from
//!    tensor shapes.
//! 2. [`checkpoint`]: atomic, verified checkpoint folders and the run folders that hold them.
//! 3. [`bucket`]: run folders in S3, GCS and Azure buckets (object_store and tokio live here
//!    and nowhere else); [`objects`]: plain objects under a bucket prefix, for services.
//! 4. [`load`]: one entry point for any model path; [`export`]: generators for serving
//!    (safetensors, ONNX).
//!
//! The networks themselves are `ugatit_model`'s; this crate only moves their tensors.

pub mod atomic;
pub mod bucket;
pub mod bucket_sync;
pub mod checkpoint;
pub mod error;
pub mod export;
pub mod formats;
pub mod load;
pub mod objects;
pub mod proto;

pub use error::WeightsError;
pub use formats::{Contents, LoadedTensors, SourceFormat};
pub use load::{load_generator, load_model, read_tensors, LoadedGenerator};
