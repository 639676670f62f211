//! RGB regions to the generator's input tensors. (Decoding image files is `ugatit_io`'s, shared
//! with training.)

use image::RgbImage;
use ugatit_io::pixels::rgb8_to_planar;
use ugatit_io::region::{cut_and_resize, Region};

/// `region` of `image` resized to `size` x `size` (tiny regions are upscaled), as
/// channel-first floats in [-1, 1], appended to `out`.
pub fn push_region(image: &RgbImage, region: Region, size: u32, out: &mut Vec<f32>) {
    rgb8_to_planar(cut_and_resize(image, region, size).as_raw(), out);
}
