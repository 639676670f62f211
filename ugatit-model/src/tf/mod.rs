//! The official TensorFlow U-GAT-IT (taki0112/UGATIT): its checkpoints and its generator.
//! Only generators are read: fine-tuning from TF weights is out of scope (its discriminators
//! differ from the PyTorch model's).

pub mod bundle;
pub mod checkpoint;
pub mod generator;
pub mod norm;
pub mod onnx;

pub use generator::{TfConfig, TfGenerator};
