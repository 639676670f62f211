//! RGB regions to the generator's input tensors. (Decoding image files is `ugatit_io`'s, shared
//! with training.)

use image::RgbImage;
use ugatit_io::pixels::{rgb8_to_planar, RESIZE_FILTER};

use crate::crop::Region;

/// `region` of `image` resized to `size` x `size` (tiny regions are upscaled), as
/// channel-first floats in [-1, 1], appended to `out`.
pub fn push_region(image: &RgbImage, region: Region, size: u32, out: &mut Vec<f32>) {
    let cropped = image::imageops::crop_imm(image, region.x, region.y, region.width, region.height)
        .to_image();
    let square = if cropped.dimensions() == (size, size) {
        cropped
    } else {
        image::imageops::resize(&cropped, size, size, RESIZE_FILTER)
    };
    rgb8_to_planar(square.as_raw(), out);
}
