//! Images to the generator's input tensors and back, as the official test transform does:
//! resize to `img_size` x `img_size`, scale to [-1, 1] (`Normalize(mean=0.5, std=0.5)`), and
//! for the output `(x * 0.5 + 0.5) * 255` rounded.

use burn::prelude::*;
use burn::tensor::TensorData;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};

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
    let mut planar = vec![0f32; 3 * size * size];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            planar[c * size * size + i] = f32::from(p[c]) / 255.0 * 2.0 - 1.0;
        }
    }
    Tensor::from_data(TensorData::new(planar, [1, 3, size, size]), device)
}

/// The `index`-th image of a `[batch, 3, h, w]` tensor in [-1, 1] as 8-bit RGB.
pub fn to_image<B: Backend>(images: Tensor<B, 4>, index: usize) -> RgbImage {
    let [_, _, h, w] = images.dims();
    let one = images.narrow(0, index, 1);
    let values = one
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default();
    let plane = h * w;
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let px = |c: usize| {
            ((values[c * plane + i] * 0.5 + 0.5) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}
