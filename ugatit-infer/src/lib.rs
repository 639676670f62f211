//! Translating images with a U-GAT-IT generator, from any model path `ugatit-model` reads.
//!
//! [`Translator`] is the API: load once, then [`Translator::translate`] or
//! [`Translator::translate_batch`] with [`Options`] (crop, size, heatmap).

pub mod crop;
pub mod face;
pub mod inputs;
pub mod preprocess;
pub mod translate;

pub use crop::{Crop, Region};
pub use translate::{Options, Output, SizeError, Translator};
