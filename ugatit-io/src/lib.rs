//! What both binaries (`ugatit-train`, `ugatit-infer`) and the service do at their edges, written
//! once so that every command behaves the same:
//!
//! - [`image_file`]: image files and bytes to 8-bit RGB (by content, EXIF orientation applied, a
//!   pixel limit checked before decoding), the recognised extensions, images found in folders.
//! - [`pixels`]: 8-bit RGB to the networks' `[-1, 1]` tensors and back, the resize filter,
//!   heatmaps in jet colours.
//! - [`region`]: the central square or a square around a face, cut out and resized.
//! - [`face`]: the largest face in an image (SeetaFace's detector, compiled in).
//! - [`device`]: `--device cpu|cuda|cuda:N`, checked, and the backend it runs on.
//! - [`timing`]: medians of repeated runs and peak memory, for the `bench` commands.
//!
//! The binaries' global allocator is the `ugatit-alloc` crate.

pub mod device;
pub mod face;
pub mod image_file;
pub mod pixels;
pub mod region;
pub mod timing;

pub use device::{DeviceChoice, DeviceError};
pub use image_file::{list_images, read_rgb, ImageError, IMAGE_EXTENSIONS};
