//! TensorFlow U-GAT-IT checkpoints (taki0112/UGATIT): the TF1 tensor-bundle reader and the
//! checkpoint's generator. The generator itself is `ugatit_model::tf`.

pub mod bundle;
pub mod checkpoint;
