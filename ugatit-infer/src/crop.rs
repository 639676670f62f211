//! Which part of an image is translated: the whole image (stretched to a square, as the
//! official test transform does), its central square, a box in pixels (what selfie2anime.com's
//! crop widget sent) or a square around the largest face.

use crate::face::FaceFinder;

/// A region of an image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

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
}
