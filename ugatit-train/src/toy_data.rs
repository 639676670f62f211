//! A procedural two-domain data set for demos and tests: photo-like scenes (gradients, soft
//! shading, sensor noise) as domain A, flat-shaded cartoons with outlines as domain B. The two
//! domains are drawn independently (unpaired), from one seed.

use std::path::Path;

use anyhow::{Context, Result};
use image::RgbImage;
use ugatit_model::init::SplitMix64;

/// Images written per domain: training and test.
pub const TRAIN_IMAGES: usize = 200;
pub const TEST_IMAGES: usize = 20;

struct Shape {
    circle: bool,
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
    colour: [f32; 3],
}

struct Scene {
    sky: [[f32; 3]; 2],
    horizon: f32,
    ground: [f32; 3],
    shapes: Vec<Shape>,
}

fn colour(rng: &mut SplitMix64) -> [f32; 3] {
    [rng.unit(), rng.unit(), rng.unit()]
}

impl Scene {
    fn random(rng: &mut SplitMix64) -> Self {
        let n = 2 + rng.below(3) as usize;
        Self {
            sky: [colour(rng), colour(rng)],
            horizon: 0.45 + 0.3 * rng.unit(),
            ground: colour(rng),
            shapes: (0..n)
                .map(|_| Shape {
                    circle: rng.unit() < 0.5,
                    cx: rng.unit(),
                    cy: 0.2 + 0.7 * rng.unit(),
                    rx: 0.08 + 0.17 * rng.unit(),
                    ry: 0.08 + 0.17 * rng.unit(),
                    colour: colour(rng),
                })
                .collect(),
        }
    }

    /// Colour, region id and a shading term (0 at a shape's top, 1 at its bottom) at (x, y).
    fn at(&self, x: f32, y: f32) -> ([f32; 3], usize, f32) {
        for (i, s) in self.shapes.iter().enumerate().rev() {
            let (dx, dy) = ((x - s.cx) / s.rx, (y - s.cy) / s.ry);
            let inside = if s.circle {
                dx * dx + dy * dy <= 1.0
            } else {
                dx.abs() <= 1.0 && dy.abs() <= 1.0
            };
            if inside {
                return (s.colour, i + 2, (dy + 1.0) / 2.0);
            }
        }
        if y < self.horizon {
            let t = y / self.horizon;
            let c = std::array::from_fn(|k| self.sky[0][k] * (1.0 - t) + self.sky[1][k] * t);
            (c, 0, t)
        } else {
            (self.ground, 1, (y - self.horizon) / (1.0 - self.horizon))
        }
    }
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Photo-like: shading, a slow texture and per-pixel noise.
fn photo(scene: &Scene, size: u32, rng: &mut SplitMix64) -> RgbImage {
    let s = size as f32;
    RgbImage::from_fn(size, size, |x, y| {
        let (fx, fy) = (x as f32 / s, y as f32 / s);
        let (c, _, shade) = scene.at(fx, fy);
        let texture = 0.05 * ((fx * 37.0).sin() * (fy * 29.0).cos());
        image::Rgb(std::array::from_fn(|k| {
            to_u8(c[k] * (1.0 - 0.35 * shade) + texture + 0.06 * rng.normal())
        }))
    })
}

/// Cartoon: four flat levels a channel and dark outlines between regions.
fn cartoon(scene: &Scene, size: u32) -> RgbImage {
    let s = size as f32;
    let id = |x: i64, y: i64| {
        let (x, y) = (x.clamp(0, size as i64 - 1), y.clamp(0, size as i64 - 1));
        scene.at(x as f32 / s, y as f32 / s).1
    };
    RgbImage::from_fn(size, size, |x, y| {
        let (c, here, _) = scene.at(x as f32 / s, y as f32 / s);
        let (xi, yi) = (i64::from(x), i64::from(y));
        let edge = [(1, 0), (0, 1), (-1, 0), (0, -1)]
            .iter()
            .any(|(dx, dy)| id(xi + dx, yi + dy) != here);
        if edge && here >= 2 {
            image::Rgb([20, 20, 28])
        } else {
            image::Rgb(std::array::from_fn(|k| to_u8((c[k] * 3.0).round() / 3.0)))
        }
    })
}

/// Writes `out/{trainA,trainB,testA,testB}` with `size` x `size` PNGs.
pub fn write(out: &Path, size: u32, seed: u64) -> Result<usize> {
    let mut written = 0;
    for (folder, count, domain) in [
        ("trainA", TRAIN_IMAGES, 0u64),
        ("trainB", TRAIN_IMAGES, 1),
        ("testA", TEST_IMAGES, 2),
        ("testB", TEST_IMAGES, 3),
    ] {
        let dir = out.join(folder);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for i in 0..count {
            let mut rng = SplitMix64::for_stream(&[seed, domain, i as u64]);
            let scene = Scene::random(&mut rng);
            let img = if domain % 2 == 0 {
                photo(&scene, size, &mut rng)
            } else {
                cartoon(&scene, size)
            };
            let path = dir.join(format!("{i:04}.png"));
            img.save(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written += 1;
        }
    }
    Ok(written)
}
