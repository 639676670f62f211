//! Images to the generator's input tensors and back, as the official test transform does:
//! resize to `img_size` x `img_size`, scale to [-1, 1] (`Normalize(mean=0.5, std=0.5)`), and
//! for the output `(x * 0.5 + 0.5) * 255` rounded.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use ugatit_model::pixels::{planar_to_rgb8, rgb8_to_planar};

/// The resampling filter: bilinear (a triangle filter that widens when shrinking, so
/// downscaling averages like PIL's), close to torchvision's default `Resize`.
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// `[1, 3, size, size]` in [-1, 1] from any image (converted to 8-bit RGB first).
pub fn to_tensor<B: Backend>(
    image: &DynamicImage,
    size: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let rgb = image.to_rgb8();
    let side = size as u32;
    let rgb = if rgb.dimensions() == (side, side) {
        rgb
    } else {
        image::imageops::resize(&rgb, side, side, RESIZE_FILTER)
    };
    let mut planar = Vec::with_capacity(3 * size * size);
    rgb8_to_planar(rgb.as_raw(), &mut planar);
    Tensor::from_data(TensorData::new(planar, [1, 3, size, size]), device)
}

/// The `index`-th image of a `[batch, 3, h, w]` tensor in [-1, 1] as 8-bit RGB.
pub fn to_image<B: Backend>(images: Tensor<B, 4>, index: usize) -> RgbImage {
    let (w, h, rgb) = planar_to_rgb8(images, index);
    RgbImage::from_raw(w, h, rgb).unwrap_or_default()
}
