//! Which square of an image the networks see: the central square, or a square around a face,
//! and that region cut out and resized to the model's side. Inference (`--crop center|auto`) and
//! data preparation (`data prepare [--face]`) both use these, so a prepared training image holds
//! the same pixels the translator would feed the generator for that photo.

use image::imageops;
use image::RgbImage;

use crate::pixels::RESIZE_FILTER;

/// A region of an image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The central square of a `width` x `height` image.
pub fn center_square(width: u32, height: u32) -> Region {
    let side = width.min(height);
    Region {
        x: (width - side) / 2,
        y: (height - side) / 2,
        width: side,
        height: side,
    }
}

/// How much wider than the detected face box the square is: hair, chin and a little
/// background, as the selfie2anime crop widget framed faces.
pub const FACE_MARGIN: f32 = 1.8;

/// A square [`FACE_MARGIN`] times the face's larger side, centred on it and moved (or, if the
/// image is too small, shrunk) to lie inside the image.
pub fn square_around(face: Region, width: u32, height: u32) -> Region {
    let side = ((face.width.max(face.height) as f32 * FACE_MARGIN).round() as u32)
        .clamp(1, width.min(height));
    let cx = face.x as f32 + face.width as f32 / 2.0;
    let cy = face.y as f32 + face.height as f32 / 2.0;
    let place =
        |c: f32, limit: u32| ((c - side as f32 / 2.0).round().max(0.0) as u32).min(limit - side);
    Region {
        x: place(cx, width),
        y: place(cy, height),
        width: side,
        height: side,
    }
}

/// `region` of `image` (which it must lie inside) resized to `size` x `size` with
/// [`RESIZE_FILTER`]; tiny regions are upscaled, a region already of that size is copied.
pub fn cut_and_resize(image: &RgbImage, region: Region, size: u32) -> RgbImage {
    let cropped =
        imageops::crop_imm(image, region.x, region.y, region.width, region.height).to_image();
    if cropped.dimensions() == (size, size) {
        cropped
    } else {
        imageops::resize(&cropped, size, size, RESIZE_FILTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_stay_inside_the_image() {
        assert_eq!(
            center_square(300, 200),
            Region {
                x: 50,
                y: 0,
                width: 200,
                height: 200
            }
        );
        let face = Region {
            x: 0,
            y: 0,
            width: 40,
            height: 50,
        };
        assert_eq!(
            square_around(face, 400, 300),
            Region {
                x: 0,
                y: 0,
                width: 90,
                height: 90
            }
        );
        let big = Region {
            x: 10,
            y: 10,
            width: 300,
            height: 300,
        };
        assert_eq!(square_around(big, 320, 240).width, 240);
    }

    #[test]
    fn cuts_the_region_before_resizing() {
        // Left half black, right half white: the right square resized stays white.
        let image = RgbImage::from_fn(8, 4, |x, _| image::Rgb([if x < 4 { 0 } else { 255 }; 3]));
        let right = Region {
            x: 4,
            y: 0,
            width: 4,
            height: 4,
        };
        let out = cut_and_resize(&image, right, 2);
        assert_eq!(out.dimensions(), (2, 2));
        assert!(out.pixels().all(|p| p.0 == [255; 3]));
        assert_eq!(cut_and_resize(&image, right, 4).as_raw(), &vec![255u8; 48]);
    }
}
