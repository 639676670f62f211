//! The official training transform (UGATIT-pytorch `train_transform`):
//! `RandomHorizontalFlip()`, `Resize((img_size + 30, img_size + 30))`, `RandomCrop(img_size)`,
//! `ToTensor()`, `Normalize(0.5, 0.5)`; without augmentation only the resize to img_size (the
//! official `test_transform`).

use image::imageops::{self, FilterType};
use image::RgbImage;
use ugatit_model::init::SplitMix64;

/// Bilinear resampling, widened when shrinking (as PIL's bilinear `Resize`).
pub const FILTER: FilterType = FilterType::Triangle;
/// How much larger than img_size the official transform resizes before its random crop.
pub const CROP_MARGIN: u32 = 30;

/// Applies the transform; every random choice comes from `rng` (flip, then the crop corner, in
/// torchvision's order).
pub fn transform(image: &RgbImage, size: u32, augment: bool, rng: &mut SplitMix64) -> RgbImage {
    if !augment {
        return resize(image, size);
    }
    let flipped;
    let image = if rng.unit() < 0.5 {
        flipped = imageops::flip_horizontal(image);
        &flipped
    } else {
        image
    };
    let big = resize(image, size + CROP_MARGIN);
    let top = rng.below(u64::from(CROP_MARGIN) + 1) as u32;
    let left = rng.below(u64::from(CROP_MARGIN) + 1) as u32;
    imageops::crop_imm(&big, left, top, size, size).to_image()
}

fn resize(image: &RgbImage, size: u32) -> RgbImage {
    if image.dimensions() == (size, size) {
        image.clone()
    } else {
        imageops::resize(image, size, size, FILTER)
    }
}

/// Appends the image's planes, scaled to [-1, 1], to `out` (channel-first).
pub fn push_planar(image: &RgbImage, out: &mut Vec<f32>) {
    ugatit_io::pixels::rgb8_to_planar(image.as_raw(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_is_seeded_and_sized() {
        let img = RgbImage::from_fn(50, 40, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let a = transform(&img, 32, true, &mut SplitMix64(3));
        assert_eq!(a.dimensions(), (32, 32));
        assert_eq!(a, transform(&img, 32, true, &mut SplitMix64(3)));
        let differs = (0..20).any(|s| transform(&img, 32, true, &mut SplitMix64(s)) != a);
        assert!(differs);
        let plain = transform(&img, 32, false, &mut SplitMix64(3));
        assert_eq!(plain, imageops::resize(&img, 32, 32, FILTER));
    }
}
