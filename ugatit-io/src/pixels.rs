//! Images as the networks see them and back: 8-bit RGB to `[-1, 1]` (`ToTensor()` then
//! `Normalize(mean=0.5, std=0.5)` in the official transforms) and the official `denorm`,
//! `(x * 0.5 + 0.5) * 255` rounded.

use burn::prelude::*;
use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};

/// The resampling filter, both ways: bilinear (a triangle filter that widens when shrinking,
/// so downscaling averages like PIL's bilinear resize that torchvision's `Resize` uses).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// Appends interleaved 8-bit RGB pixels to `out` as channel-first floats in [-1, 1].
pub fn rgb8_to_planar(rgb: &[u8], out: &mut Vec<f32>) {
    for c in 0..3 {
        out.extend(
            rgb.iter()
                .skip(c)
                .step_by(3)
                .map(|&v| f32::from(v) / 255.0 * 2.0 - 1.0),
        );
    }
}

/// Image `index` of `[batch, 3, h, w]` (values in [-1, 1]) as interleaved 8-bit RGB:
/// `(width, height, pixels)`.
pub fn planar_to_rgb8<B: Backend>(images: Tensor<B, 4>, index: usize) -> (u32, u32, Vec<u8>) {
    let [_, _, h, w] = images.dims();
    let values = images
        .narrow(0, index, 1)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default();
    let plane = h * w;
    let mut rgb = Vec::with_capacity(3 * plane);
    for i in 0..plane {
        for c in 0..3 {
            let v = values.get(c * plane + i).copied().unwrap_or(0.0);
            rgb.push(((v * 0.5 + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    (w as u32, h as u32, rgb)
}

/// Image `index` of a `[batch, 3, h, w]` tensor in [-1, 1] as an 8-bit RGB image.
pub fn to_image<B: Backend>(images: Tensor<B, 4>, index: usize) -> RgbImage {
    let (w, h, rgb) = planar_to_rgb8(images, index);
    RgbImage::from_raw(w, h, rgb).unwrap_or_default()
}

/// A CAM heatmap (`w * h` values) normalised as the official `cam()`, resized bilinearly to
/// `out_w` x `out_h` and coloured with the jet map.
pub fn heatmap_image(values: &[f32], w: u32, h: u32, out_w: u32, out_h: u32) -> RgbImage {
    let grey = GrayImage::from_raw(w, h, normalise_heatmap(values)).unwrap_or_default();
    let big = imageops::resize(&grey, out_w, out_h, RESIZE_FILTER);
    RgbImage::from_fn(out_w, out_h, |x, y| {
        image::Rgb(jet(f32::from(big.get_pixel(x, y)[0]) / 255.0))
    })
}

/// The jet colour map (blue, cyan, yellow, red) for `v` in [0, 1], as OpenCV's
/// `COLORMAP_JET` that the official code colours heatmaps with.
pub fn jet(v: f32) -> [u8; 3] {
    let ch = |centre: f32| ((1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

/// A heatmap (`h * w` values) min-max normalised to 8-bit grey, as the official `cam()`:
/// `x - min`, divided by the new maximum.
pub fn normalise_heatmap(values: &[f32]) -> Vec<u8> {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().map(|v| v - min).fold(0.0f32, f32::max);
    let scale = if max > 0.0 { 255.0 / max } else { 0.0 };
    values.iter().map(|v| ((v - min) * scale) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ugatit_model::Cpu;

    #[test]
    fn round_trips_every_level() {
        let rgb: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
        let mut planar = Vec::new();
        rgb8_to_planar(&rgb, &mut planar);
        let t = Tensor::<Cpu, 4>::from_data(
            burn::tensor::TensorData::new(planar, [1, 3, 16, 16]),
            &Default::default(),
        );
        assert_eq!(planar_to_rgb8(t, 0), (16, 16, rgb));
    }
}
