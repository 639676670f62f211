//! Sample grids laid out as the official code's: one column per image with, from the top, the
//! real image, the identity's heatmap, the identity, the translation's heatmap, the
//! translation, the cycle's heatmap and the cycle. Heatmaps are min-max normalised, resized to
//! the image size and coloured with the jet map (the official `cam()`).

use burn::prelude::*;
use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};
use ugatit_model::pixels::{self, normalise_heatmap};
use ugatit_model::Generator;

/// The grid for translating `real` (`[n, 3, S, S]`) with `forward` and back with `backward`.
pub fn grid<B: Backend>(
    forward: &Generator<B>,
    backward: &Generator<B>,
    real: Tensor<B, 4>,
) -> RgbImage {
    let [n, _, s, _] = real.dims();
    let identity = backward.forward(real.clone());
    let translated = forward.forward(real.clone());
    let cycle = backward.forward(translated.image.clone());
    let rows = [
        Row::Image(real),
        Row::Heat(identity.heatmap),
        Row::Image(identity.image),
        Row::Heat(translated.heatmap),
        Row::Image(translated.image),
        Row::Heat(cycle.heatmap),
        Row::Image(cycle.image),
    ];
    let side = s as u32;
    let mut out = RgbImage::new(side * n as u32, side * rows.len() as u32);
    for (r, row) in rows.into_iter().enumerate() {
        let tiles = row.render(side);
        for (c, tile) in tiles.iter().enumerate() {
            imageops::replace(
                &mut out,
                tile,
                i64::from(side) * c as i64,
                i64::from(side) * r as i64,
            );
        }
    }
    out
}

enum Row<B: Backend> {
    Image(Tensor<B, 4>),
    Heat(Tensor<B, 4>),
}

impl<B: Backend> Row<B> {
    fn render(self, side: u32) -> Vec<RgbImage> {
        match self {
            Row::Image(t) => {
                let n = t.dims()[0];
                (0..n).map(|i| tile(t.clone(), i)).collect()
            }
            Row::Heat(t) => {
                let [n, _, h, w] = t.dims();
                let v = t
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .unwrap_or_default();
                v.chunks(h * w)
                    .take(n)
                    .map(|m| jet(m, w, h, side))
                    .collect()
            }
        }
    }
}

fn tile<B: Backend>(t: Tensor<B, 4>, i: usize) -> RgbImage {
    let (w, h, rgb) = ugatit_model::pixels::planar_to_rgb8(t, i);
    RgbImage::from_raw(w, h, rgb).unwrap_or_default()
}

/// Bilinear resize of a normalised heatmap to `side`, coloured with the jet map.
fn jet(values: &[f32], w: usize, h: usize, side: u32) -> RgbImage {
    let grey =
        GrayImage::from_raw(w as u32, h as u32, normalise_heatmap(values)).unwrap_or_default();
    let big = imageops::resize(&grey, side, side, FilterType::Triangle);
    RgbImage::from_fn(side, side, |x, y| {
        image::Rgb(pixels::jet(f32::from(big.get_pixel(x, y)[0]) / 255.0))
    })
}
