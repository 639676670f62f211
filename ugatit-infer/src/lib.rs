//! Translating images with a U-GAT-IT generator, from any model path `ugatit-model` reads.
//!
//! [`Translator`] is the whole API: load once, translate many images.

pub mod preprocess;
pub mod translate;

pub use translate::{SizeError, Translator};
