//! The largest face in an image, by SeetaFace's frontal detector (the `rustface` crate). The
//! model is compiled into the binary (models/seeta_fd_frontal_v1.0.bin, BSD 2-Clause). It lives
//! here, not in the translator, so that `ugatit-infer translate --crop auto` and
//! `ugatit-train data prepare --face` find the same face in the same photo.

use image::RgbImage;
use rustface::ImageData;

use crate::region::Region;

const MODEL: &[u8] = include_bytes!("../models/seeta_fd_frontal_v1.0.bin");

/// Finds faces; cheap to make (the model is parsed on first use).
#[derive(Default)]
pub struct FaceFinder {
    model: std::sync::OnceLock<Option<rustface::Model>>,
}

impl FaceFinder {
    /// The largest face's box, if any.
    pub fn largest(&self, image: &RgbImage) -> Option<Region> {
        let model = self
            .model
            .get_or_init(|| rustface::read_model(MODEL).ok())
            .clone()?;
        let mut detector = rustface::create_detector_with_model(model);
        // rustface's recommended settings.
        detector.set_min_face_size(20);
        detector.set_score_thresh(2.0);
        detector.set_pyramid_scale_factor(0.8);
        detector.set_slide_window_step(4, 4);
        let gray = image::DynamicImage::ImageRgb8(image.clone()).to_luma8();
        let (width, height) = gray.dimensions();
        let faces = detector.detect(&ImageData::new(&gray, width, height));
        faces
            .iter()
            .map(|f| {
                let b = f.bbox();
                // Boxes may reach past the border: clip them to the image.
                let x0 = b.x().max(0) as u32;
                let y0 = b.y().max(0) as u32;
                let x1 = ((b.x() + b.width() as i32).max(0) as u32).min(width);
                let y1 = ((b.y() + b.height() as i32).max(0) as u32).min(height);
                Region {
                    x: x0,
                    y: y0,
                    width: x1.saturating_sub(x0),
                    height: y1.saturating_sub(y0),
                }
            })
            .filter(|r| r.width > 0 && r.height > 0)
            .max_by_key(|r| u64::from(r.width) * u64::from(r.height))
    }
}
