//! `ugatit-train data check`: what a data set folder holds before GPU days are spent on it.
//!
//! For each of trainA, trainB, testA and testB: how many images, their sizes and colour modes,
//! every file that cannot be used (with the decoder's reason), images too small to carry the
//! detail the generator is trained to make, and nearly constant ones (blank frames, failed
//! exports); across all four, exact duplicates, flagged as a leak when one copy is for training
//! and another for testing. Each file's header is read before its pixels are decoded (so a
//! decompression bomb is refused by its size), and files are decoded in parallel.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use image::{ExtendedColorType, RgbImage};
use serde::Serialize;
use ugatit_io::image_file::{decode_rgb, read_header};

use super::scan::{scan, walk, Hash};

/// The four folders of a data set, in the order reported.
pub const FOLDERS: [&str; 4] = ["trainA", "trainB", "testA", "testB"];

/// Images with a side below this are reported as tiny: a quarter of the usual 256, so the
/// training resize would blow them up four times or more.
pub const DEFAULT_MIN_SIDE: u32 = 64;

/// Images whose pixel values (all channels) have a standard deviation below this many grey
/// levels are reported as nearly empty: a blank or almost uniform frame teaches nothing.
pub const NEAR_EMPTY_STD: f64 = 2.0;

/// What to check against.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    pub max_pixels: u64,
    pub min_side: u32,
}

/// Whether a folder can be trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderStatus {
    Ok,
    Missing,
    /// No file with an image extension.
    Empty,
    /// Image files, none of which decodes.
    NoUsable,
}

/// A file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unusable {
    pub file: String,
    pub reason: String,
}

/// A usable image worth a second look.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flagged {
    pub file: String,
    pub width: u32,
    pub height: u32,
    /// Standard deviation of the pixel values, in grey levels.
    pub std: f64,
}

/// One folder's findings. File names are relative to the data set root.
#[derive(Debug, Clone, Serialize)]
pub struct FolderReport {
    pub name: String,
    pub status: FolderStatus,
    /// Files with an image extension (what training reads).
    pub images: usize,
    pub usable: usize,
    /// `"WxH"` (after EXIF orientation) -> count, over usable images.
    pub sizes: BTreeMap<String, usize>,
    /// Colour mode as stored (`RGB`, `gray`, `CMYK`, `RGBA 16-bit`...) -> count.
    pub modes: BTreeMap<String, usize>,
    pub unusable: Vec<Unusable>,
    pub tiny: Vec<Flagged>,
    pub near_empty: Vec<Flagged>,
    /// Files without an image extension, which training ignores.
    pub ignored: Vec<String>,
}

/// Files with the same content.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub files: Vec<String>,
    /// Copies in both a train and a test folder: test scores would measure memorisation.
    pub leak: bool,
}

/// The whole data set's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub root: String,
    /// False when a folder is missing, empty or has no usable image.
    pub ok: bool,
    pub folders: Vec<FolderReport>,
    pub duplicates: Vec<Duplicate>,
}

/// What decoding one file found.
struct Decoded {
    width: u32,
    height: u32,
    mode: String,
    std: f64,
}

/// Checks the data set at `root`.
pub fn check(root: &Path, settings: &CheckSettings) -> Report {
    let relative = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut folders = Vec::new();
    let mut by_hash: BTreeMap<Hash, Vec<String>> = BTreeMap::new();
    for name in FOLDERS {
        let mut report = FolderReport {
            name: name.to_string(),
            status: FolderStatus::Ok,
            images: 0,
            usable: 0,
            sizes: BTreeMap::new(),
            modes: BTreeMap::new(),
            unusable: Vec::new(),
            tiny: Vec::new(),
            near_empty: Vec::new(),
            ignored: Vec::new(),
        };
        let dir = root.join(name);
        if !dir.is_dir() {
            report.status = FolderStatus::Missing;
            folders.push(report);
            continue;
        }
        let (images, others) = match walk(&dir) {
            Ok(found) => found,
            Err(e) => {
                report.status = FolderStatus::NoUsable;
                report.unusable.push(Unusable {
                    file: name.to_string(),
                    reason: format!("cannot list the folder: {e}"),
                });
                folders.push(report);
                continue;
            }
        };
        report.images = images.len();
        report.ignored = others.iter().map(|p| relative(p)).collect();
        for file in scan(name, &images, |_, bytes| decode(bytes, settings.max_pixels)) {
            let rel = relative(&file.path);
            if let Some(hash) = file.hash {
                by_hash.entry(hash).or_default().push(rel.clone());
            }
            let d = match file.result {
                Ok(d) => d,
                Err(reason) => {
                    report.unusable.push(Unusable { file: rel, reason });
                    continue;
                }
            };
            report.usable += 1;
            *report
                .sizes
                .entry(format!("{}x{}", d.width, d.height))
                .or_default() += 1;
            *report.modes.entry(d.mode).or_default() += 1;
            let flagged = Flagged {
                file: rel,
                width: d.width,
                height: d.height,
                std: d.std,
            };
            if d.std < NEAR_EMPTY_STD {
                report.near_empty.push(flagged.clone());
            }
            if d.width.min(d.height) < settings.min_side {
                report.tiny.push(flagged);
            }
        }
        report.status = match (report.images, report.usable) {
            (0, _) => FolderStatus::Empty,
            (_, 0) => FolderStatus::NoUsable,
            _ => FolderStatus::Ok,
        };
        folders.push(report);
    }
    let duplicates = by_hash
        .into_values()
        .filter(|files| files.len() > 1)
        .map(|files| {
            let has = |prefix: &str| files.iter().any(|f| f.starts_with(prefix));
            Duplicate {
                leak: has("train") && has("test"),
                files,
            }
        })
        .collect();
    Report {
        root: root.display().to_string(),
        ok: folders.iter().all(|f| f.status == FolderStatus::Ok),
        folders,
        duplicates,
    }
}

/// The header first (the colour mode as stored), then the pixels, which must decode completely.
fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, String> {
    let header = read_header(bytes).map_err(|e| e.to_string())?;
    let rgb = decode_rgb(bytes, max_pixels).map_err(|e| e.to_string())?;
    Ok(Decoded {
        width: rgb.width(),
        height: rgb.height(),
        mode: mode_name(header.colour),
        std: pixel_std(&rgb),
    })
}

/// A colour type in the words people use for it.
fn mode_name(colour: ExtendedColorType) -> String {
    match colour {
        ExtendedColorType::L8 => "gray".into(),
        ExtendedColorType::La8 => "gray+alpha".into(),
        ExtendedColorType::Rgb8 => "RGB".into(),
        ExtendedColorType::Rgba8 => "RGBA".into(),
        ExtendedColorType::L16 => "gray 16-bit".into(),
        ExtendedColorType::La16 => "gray+alpha 16-bit".into(),
        ExtendedColorType::Rgb16 => "RGB 16-bit".into(),
        ExtendedColorType::Rgba16 => "RGBA 16-bit".into(),
        ExtendedColorType::Cmyk8 => "CMYK".into(),
        other => format!("{other:?}"),
    }
}

/// Standard deviation of every channel value of `rgb`, in grey levels.
fn pixel_std(rgb: &RgbImage) -> f64 {
    let values = rgb.as_raw();
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// How many of a folder's most common sizes the text report lists.
const SIZES_SHOWN: usize = 5;

/// How many files of one kind of warning the text report lists (`--json` lists all): a folder
/// of 3,400 thumbnails should not bury the rest. Unusable files are always all listed.
const FILES_SHOWN: usize = 10;

/// Writes the first [`FILES_SHOWN`] `lines`, then how many more there are.
fn list(f: &mut fmt::Formatter<'_>, lines: impl ExactSizeIterator<Item = String>) -> fmt::Result {
    let total = lines.len();
    for line in lines.take(FILES_SHOWN) {
        writeln!(f, "  {line}")?;
    }
    if total > FILES_SHOWN {
        writeln!(
            f,
            "  ... and {} more (--json lists all)",
            total - FILES_SHOWN
        )?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.root)?;
        for folder in &self.folders {
            folder.fmt(f)?;
        }
        for d in &self.duplicates {
            let what = if d.leak {
                "duplicates across train and test (a leak)"
            } else {
                "duplicates"
            };
            writeln!(f, "{what}: {}", d.files.join(" = "))?;
        }
        if self.ok {
            writeln!(f, "ok: every folder has usable images")
        } else {
            writeln!(
                f,
                "not usable: a folder is missing, empty or has no usable image"
            )
        }
    }
}

impl fmt::Display for FolderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            FolderStatus::Missing => return writeln!(f, "{}: missing", self.name),
            FolderStatus::Empty => return writeln!(f, "{}: empty (no image files)", self.name),
            FolderStatus::NoUsable => writeln!(
                f,
                "{}: no usable image ({} image files)",
                self.name, self.images
            )?,
            FolderStatus::Ok => writeln!(
                f,
                "{}: {} usable of {} image files",
                self.name, self.usable, self.images
            )?,
        }
        let mut sizes: Vec<(&String, &usize)> = self.sizes.iter().collect();
        sizes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !sizes.is_empty() {
            let shown: Vec<String> = sizes
                .iter()
                .take(SIZES_SHOWN)
                .map(|(s, n)| format!("{s} ({n})"))
                .collect();
            let more = sizes.len().saturating_sub(SIZES_SHOWN);
            let more = if more > 0 {
                format!(" and {more} other sizes")
            } else {
                String::new()
            };
            writeln!(f, "  sizes: {}{more}", shown.join(", "))?;
        }
        if !self.modes.is_empty() {
            let modes: Vec<String> = self
                .modes
                .iter()
                .map(|(m, n)| format!("{m} ({n})"))
                .collect();
            writeln!(f, "  colour modes: {}", modes.join(", "))?;
        }
        for u in &self.unusable {
            writeln!(f, "  unusable: {}: {}", u.file, u.reason)?;
        }
        let tiny = self
            .tiny
            .iter()
            .map(|t| format!("tiny: {} is {}x{}", t.file, t.width, t.height));
        list(f, tiny)?;
        let empty = self.near_empty.iter().map(|e| {
            format!(
                "nearly empty: {} (pixel standard deviation {:.2})",
                e.file, e.std
            )
        });
        list(f, empty)?;
        let ignored = self
            .ignored
            .iter()
            .map(|i| format!("ignored (not an image extension): {i}"));
        list(f, ignored)
    }
}
