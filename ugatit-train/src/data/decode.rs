//! Image files to 8-bit RGB, whatever their colour type, with EXIF orientation applied.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

/// Extensions a data folder is searched for (lower case).
pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Decodes `path` by its content (not its name): gray, RGBA, CMYK, 16-bit and palette images
/// are converted to RGB, and the EXIF orientation is applied.
pub fn decode_rgb(path: &Path) -> Result<RgbImage, String> {
    let reader = ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not a PNG, JPEG, WebP or BMP image".into());
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// Image files under `dir`, recursively, sorted by path.
pub fn list_images(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
