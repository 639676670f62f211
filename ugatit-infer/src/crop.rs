//! Which part of an image is translated: the whole image (stretched to a square, as the
//! official test transform does), its central square, a box in pixels (what selfie2anime.com's
//! crop widget sent) or a square around the largest face.

use ugatit_io::face::FaceFinder;
// The squares are `ugatit_io`'s, shared with `ugatit-train data prepare`.
pub use ugatit_io::region::Region;
use ugatit_io::region::{center_square, square_around};

/// How to choose the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Crop {
    /// The whole image, resized to a square (non-square images are stretched).
    #[default]
    Whole,
    /// The largest central square.
    Center,
    /// `X,Y,W,H` in pixels of the original (EXIF-rotated) image.
    Box(Region),
    /// A square around the largest face; without one, the central square if `fallback_center`,
    /// else an error.
    Auto { fallback_center: bool },
}

/// A region that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CropError {
    #[error("crop {x},{y},{w},{h} is outside the {width}x{height} image")]
    Outside {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        width: u32,
        height: u32,
    },
    #[error("no face found (pass --crop-fallback center to use the central square instead)")]
    NoFace,
}

impl std::str::FromStr for Crop {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "center" | "centre" => Ok(Crop::Center),
            "auto" => Ok(Crop::Auto {
                fallback_center: false,
            }),
            _ => {
                let v: Vec<u32> = s
                    .split(',')
                    .map(|p| p.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        format!("bad crop {s:?}: use X,Y,W,H in pixels, center or auto")
                    })?;
                match v.as_slice() {
                    [x, y, w, h] if *w > 0 && *h > 0 => Ok(Crop::Box(Region {
                        x: *x,
                        y: *y,
                        width: *w,
                        height: *h,
                    })),
                    _ => Err(format!("bad crop {s:?}: use X,Y,W,H with W and H above 0")),
                }
            }
        }
    }
}

impl Crop {
    /// The region of `image` to translate.
    pub fn region(&self, image: &image::RgbImage, faces: &FaceFinder) -> Result<Region, CropError> {
        let (width, height) = image.dimensions();
        match *self {
            Crop::Whole => Ok(Region {
                x: 0,
                y: 0,
                width,
                height,
            }),
            Crop::Center => Ok(center_square(width, height)),
            Crop::Box(r) => {
                let fits = u64::from(r.x) + u64::from(r.width) <= u64::from(width)
                    && u64::from(r.y) + u64::from(r.height) <= u64::from(height);
                if fits {
                    Ok(r)
                } else {
                    Err(CropError::Outside {
                        x: r.x,
                        y: r.y,
                        w: r.width,
                        h: r.height,
                        width,
                        height,
                    })
                }
            }
            Crop::Auto { fallback_center } => match faces.largest(image) {
                Some(face) => Ok(square_around(face, width, height)),
                None if fallback_center => Ok(center_square(width, height)),
                None => Err(CropError::NoFace),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boxes_and_names() {
        assert_eq!("center".parse(), Ok(Crop::Center));
        assert_eq!(
            "10, 20,30,40".parse(),
            Ok(Crop::Box(Region {
                x: 10,
                y: 20,
                width: 30,
                height: 40
            }))
        );
        assert!("1,2,0,4".parse::<Crop>().is_err());
        assert!("1,2,3".parse::<Crop>().is_err());
    }
}
