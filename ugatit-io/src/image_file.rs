//! Image files to 8-bit RGB, whatever their colour type, with EXIF orientation applied; the
//! extensions every command recognises; images found in folders.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageReader, RgbImage};

/// Extensions searched for in folders (lower case), by training and translation alike: the
/// codecs the workspace builds `image` with.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"];

/// The default pixel limit (`--max-pixels`): 50 megapixels, far above any camera's selfie and
/// far below what would exhaust memory in a decompression bomb.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("empty file")]
    Empty,
    #[error("not a readable image ({0})")]
    Unreadable(String),
    #[error("{width}x{height} is {} pixels, more than --max-pixels {max}", u64::from(*width) * u64::from(*height))]
    TooLarge { width: u32, height: u32, max: u64 },
}

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (any case).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Image files under `dir`, recursively, sorted by path.
pub fn list_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_image_path(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Decodes the file at `path`: see [`decode_rgb`].
pub fn read_rgb(path: &Path, max_pixels: u64) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Unreadable(e.to_string()))?;
    decode_rgb(&bytes, max_pixels)
}

/// What an image file's header says, before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// As stored, before EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// The colour type as stored (CMYK, 16-bit, gray...), before conversion to RGB.
    pub colour: ExtendedColorType,
}

/// Reads the header of the image in `bytes` (by content): a cheap first look that `data check`
/// reports colour modes from.
pub fn read_header(bytes: &[u8]) -> Result<Header, ImageError> {
    let decoder = open_decoder(bytes)?;
    let (width, height) = decoder.dimensions();
    let colour = match jpeg_components(bytes) {
        Some(4) => ExtendedColorType::Cmyk8,
        _ => decoder.original_color_type(),
    };
    Ok(Header {
        width,
        height,
        colour,
    })
}

/// The number of colour components in a JPEG's frame header (4: CMYK or YCCK), which `image`'s
/// JPEG decoder converts to RGB without reporting the original. `None` if `bytes` is no JPEG
/// or its frame header cannot be found.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    let mut i = 2;
    while bytes.get(i) == Some(&0xff) {
        let marker = *bytes.get(i + 1)?;
        if marker == 0xff {
            // A fill byte before the marker.
            i += 1;
            continue;
        }
        // Start-of-frame markers (SOF0 to SOF15, less DHT, JPG and DAC): length, precision,
        // height, width, then the component count.
        if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            return bytes.get(i + 9).copied();
        }
        let length = u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]);
        i += 2 + usize::from(length);
    }
    None
}

/// A decoder for `bytes`, chosen by content (not by name), its header read.
fn open_decoder(bytes: &[u8]) -> Result<impl ImageDecoder + '_, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?;
    if reader.format().is_none() {
        return Err(ImageError::Unreadable(
            "not a PNG, JPEG, WebP, BMP or TIFF image".into(),
        ));
    }
    reader.into_decoder().map_err(|e| unreadable(&e))
}

fn unreadable(e: &dyn std::fmt::Display) -> ImageError {
    ImageError::Unreadable(e.to_string())
}

/// Decodes `bytes` by content (not by name), refusing images of more than `max_pixels` before
/// decoding them; applies the EXIF orientation; converts any colour type (gray, RGBA, CMYK,
/// 16-bit, palette) to 8-bit RGB.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ImageError> {
    let mut decoder = open_decoder(bytes)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max: max_pixels,
        });
    }
    let orientation = decoder.orientation().map_err(|e| unreadable(&e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| unreadable(&e))?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_component_count_of_a_jpeg_frame() {
        let mut jpeg = Vec::new();
        image::GrayImage::new(8, 8)
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(jpeg_components(&jpeg), Some(1));
        assert_eq!(read_header(&jpeg).unwrap().colour, ExtendedColorType::L8);
        // Cut inside the headers, or not a JPEG at all: no answer, and no panic.
        assert_eq!(jpeg_components(&jpeg[..5]), None);
        assert_eq!(jpeg_components(b"GIF89a"), None);
    }

    #[test]
    fn lists_every_recognised_extension_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["a.JPG", "b.tif", "sub/c.TIFF", "d.txt", "e"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let found: Vec<String> = list_images(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(found, ["a.JPG", "b.tif", "sub/c.TIFF"]);
    }

    #[test]
    fn refuses_empty_unknown_and_oversized_images() {
        assert!(matches!(decode_rgb(b"", 10), Err(ImageError::Empty)));
        assert!(matches!(
            decode_rgb(b"hello, world", 10),
            Err(ImageError::Unreadable(_))
        ));
        let mut png = Vec::new();
        RgbImage::new(4, 3)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode_rgb(&png, 12).unwrap().dimensions(), (4, 3));
        let header = read_header(&png).unwrap();
        assert_eq!((header.width, header.height), (4, 3));
        assert_eq!(header.colour, ExtendedColorType::Rgb8);
        let e = decode_rgb(&png, 11).unwrap_err();
        assert_eq!(e.to_string(), "4x3 is 12 pixels, more than --max-pixels 11");
    }
}
