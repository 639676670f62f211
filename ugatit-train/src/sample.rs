//! Sample grids laid out as the official code's: one column per image with, from the top, the
//! real image, the identity's heatmap, the identity, the translation's heatmap, the
//! translation, the cycle's heatmap and the cycle. Heatmaps are min-max normalised, resized to
//! the image size and coloured with the jet map (the official `cam()`).

use burn::prelude::*;
use image::{imageops, RgbImage};
use ugatit_io::pixels::{heatmap_image, to_image};
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
                (0..n).map(|i| to_image(t.clone(), i)).collect()
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
                    .map(|m| heatmap_image(m, w as u32, h as u32, side, side))
                    .collect()
            }
        }
    }
}
