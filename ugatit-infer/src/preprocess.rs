//! Image files to RGB and RGB regions to the generator's input tensors.

use std::path::Path;

use burn::prelude::*;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use ugatit_model::pixels::{planar_to_rgb8, rgb8_to_planar};

use crate::crop::Region;

/// The resampling filter, both ways: bilinear (a triangle filter that widens when shrinking,
/// so downscaling averages like PIL's bilinear resize that torchvision's `Resize` uses).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// Why an image file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("empty file")]
    Empty,
    #[error("not a readable image ({0})")]
    Unreadable(String),
    #[error("{width}x{height} is {} pixels, more than --max-pixels {max}", u64::from(*width) * u64::from(*height))]
    TooLarge { width: u32, height: u32, max: u64 },
}

/// Decodes `path` by content, refusing images of more than `max_pixels` before decoding them;
/// applies the EXIF orientation; converts any colour type (gray, RGBA, CMYK, 16-bit, palette)
/// to 8-bit RGB.
pub fn read_rgb(path: &Path, max_pixels: u64) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Unreadable(e.to_string()))?;
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Unreadable(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::Unreadable("unknown format".into()));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| ImageError::Unreadable(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max: max_pixels,
        });
    }
    let orientation = decoder
        .orientation()
        .map_err(|e| ImageError::Unreadable(e.to_string()))?;
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Unreadable(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// `region` of `image` resized to `size` x `size` (tiny regions are upscaled), as
/// channel-first floats in [-1, 1], appended to `out`.
pub fn push_region(image: &RgbImage, region: Region, size: u32, out: &mut Vec<f32>) {
    let cropped = image::imageops::crop_imm(image, region.x, region.y, region.width, region.height)
        .to_image();
    let square = if cropped.dimensions() == (size, size) {
        cropped
    } else {
        image::imageops::resize(&cropped, size, size, RESIZE_FILTER)
    };
    rgb8_to_planar(square.as_raw(), out);
}

/// The `index`-th image of a `[batch, 3, h, w]` tensor in [-1, 1] as 8-bit RGB.
pub fn to_image<B: Backend>(images: Tensor<B, 4>, index: usize) -> RgbImage {
    let (w, h, rgb) = planar_to_rgb8(images, index);
    RgbImage::from_raw(w, h, rgb).unwrap_or_default()
}
