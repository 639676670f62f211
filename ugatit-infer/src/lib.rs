//! Translating images with a U-GAT-IT generator, from any model path `ugatit-model` reads.
//!
//! [`Translator`] is the API: load once, then [`Translator::translate`] or
//! [`Translator::translate_batch`] with [`Options`] (crop, size, heatmap);
//! [`files::translate_files`] runs the command's loop over image files.

pub mod crop;
pub mod files;
pub mod inputs;
pub mod preprocess;
pub mod translate;

pub use crop::{Crop, Region};
pub use translate::{Options, Output, SizeError, Translator};
/// The face finder `--crop auto` uses (it lives in `ugatit_io`, shared with the trainer).
pub use ugatit_io::face;
