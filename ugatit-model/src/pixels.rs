//! Images as the networks see them and back: 8-bit RGB to `[-1, 1]` (`ToTensor()` then
//! `Normalize(mean=0.5, std=0.5)` in the official transforms) and the official `denorm`,
//! `(x * 0.5 + 0.5) * 255` rounded.

use burn::prelude::*;

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
    use crate::Cpu;

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
