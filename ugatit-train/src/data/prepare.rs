//! `ugatit-train data prepare`: two folders of raw photos to a data set in the layout training
//! reads (trainA, trainB, testA, testB), the way inference will see photos.
//!
//! Each image is decoded as inference decodes it (EXIF orientation, the pixel limit), cut to a
//! square (around the largest face with `face`, by the detector `translate --crop auto` uses,
//! else the central square) and resized with inference's filter, so a model trains on the
//! framing and resampling it later translates with. Exact duplicates are kept once (so no
//! photo lands in both train and test), files that cannot be used are reported and skipped,
//! and a seeded shuffle picks the test images.
//!
//! Rerunning with the same arguments writes the same bytes: outputs are named by their source
//! file's content hash (not by where the file was found) and encoded with fixed PNG settings
//! and no metadata, and the split shuffles the sorted names. Everything is written into a
//! staging folder inside the output first and moved into place only once both domains are
//! done, so a failed run leaves an earlier data set as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use ugatit_io::face::FaceFinder;
use ugatit_io::image_file::{decode_rgb, IMAGE_EXTENSIONS};
use ugatit_io::region::{center_square, cut_and_resize, square_around};
use ugatit_model::init::SplitMix64;

use super::scan::{hex, scan, walk, Hash};
use super::shuffle;

/// The side of the written squares: the official model's `img_size`.
pub const DEFAULT_SIZE: u32 = 256;

/// Test images a domain: what the selfie2anime set has.
pub const DEFAULT_TEST_COUNT: usize = 100;

/// Hex digits of the content hash in an output's name: 64 bits, so a clash between two
/// different photos is vanishingly unlikely (and refused, never overwritten, if it happens).
const NAME_DIGITS: usize = 16;

/// Where a run writes before moving its folders into place.
const STAGING: &str = ".prepare-staging";

/// How many of a domain's images become test images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TestSplit {
    Count(usize),
    /// A share of the usable images, rounded to the nearest whole image.
    Fraction(f64),
}

/// What to make.
#[derive(Debug, Clone, Copy)]
pub struct PrepareSettings {
    pub size: u32,
    /// Square around the largest face (photos without one are skipped) instead of the centre.
    pub face: bool,
    pub test: TestSplit,
    pub seed: u64,
    pub max_pixels: u64,
    /// Replace the output's trainA, trainB, testA and testB if they hold files.
    pub overwrite: bool,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("--size must be at least 1")]
    ZeroSize,
    #[error("--test-fraction {0} is not in [0, 1)")]
    BadFraction(f64),
    #[error("--output {} is inside the input {}: prepare never writes into its inputs; choose an output elsewhere", output.display(), input.display())]
    OutputInInput { output: PathBuf, input: PathBuf },
    #[error("the input {} is inside {}, which prepare writes: move the photos elsewhere first", input.display(), folder.display())]
    InputInOutput { input: PathBuf, folder: PathBuf },
    #[error("{}: no image files ({})", dir.display(), IMAGE_EXTENSIONS.join(", "))]
    NoImages { dir: PathBuf },
    #[error("{}: {usable} usable images, too few for {test} test images and at least one for training: lower --test-count or --test-fraction", dir.display())]
    TooFew {
        dir: PathBuf,
        usable: usize,
        test: usize,
    },
    #[error("{} already holds files: pass --overwrite to replace trainA, trainB, testA and testB, or choose another --output", dir.display())]
    Exists { dir: PathBuf },
    #[error("{} and {} have the same name {name}: rename one and rerun", first.display(), second.display())]
    NameClash {
        first: PathBuf,
        second: PathBuf,
        name: String,
    },
}

/// A file that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

/// What became of one domain's files.
#[derive(Debug, Clone)]
pub struct DomainReport {
    /// `A` or `B`.
    pub domain: &'static str,
    pub source: PathBuf,
    /// Files with an image extension.
    pub images: usize,
    /// `(removed, same content as)`.
    pub duplicates: Vec<(PathBuf, PathBuf)>,
    pub skipped: Vec<Skipped>,
    pub train: usize,
    pub test: usize,
}

/// What a run wrote.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub output: PathBuf,
    pub domains: Vec<DomainReport>,
}

/// Prepares `a` and `b` into `output`'s trainA, testA, trainB and testB.
pub fn prepare(
    a: &Path,
    b: &Path,
    output: &Path,
    settings: &PrepareSettings,
) -> Result<Prepared, PrepareError> {
    if settings.size == 0 {
        return Err(PrepareError::ZeroSize);
    }
    if let TestSplit::Fraction(f) = settings.test {
        if !(0.0..1.0).contains(&f) {
            return Err(PrepareError::BadFraction(f));
        }
    }
    check_paths(&[a, b], output)?;
    let layout = ["trainA", "testA", "trainB", "testB"];
    for folder in layout {
        let dir = output.join(folder);
        let holds_files = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
        if holds_files && !settings.overwrite {
            return Err(PrepareError::Exists { dir });
        }
    }
    let staging = output.join(STAGING);
    remove_dir_if_any(&staging)?;
    let done = [("A", a), ("B", b)]
        .into_iter()
        .enumerate()
        .map(|(i, (domain, source))| prepare_domain(domain, i as u64, source, &staging, settings))
        .collect::<Result<Vec<_>, _>>();
    let domains = match done {
        Ok(d) => d,
        Err(e) => {
            // Best effort: the error in hand says more than a failure to tidy up.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    for folder in layout {
        let target = output.join(folder);
        remove_dir_if_any(&target)?;
        std::fs::rename(staging.join(folder), &target).map_err(io(&target))?;
    }
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    Ok(Prepared {
        output: output.to_path_buf(),
        domains,
    })
}

/// One domain: `source` to `staging/trainX` and `staging/testX`.
fn prepare_domain(
    domain: &'static str,
    index: u64,
    source: &Path,
    staging: &Path,
    settings: &PrepareSettings,
) -> Result<DomainReport, PrepareError> {
    let (files, others) = walk(source).map_err(io(source))?;
    if files.is_empty() {
        return Err(PrepareError::NoImages {
            dir: source.to_path_buf(),
        });
    }
    let mut report = DomainReport {
        domain,
        source: source.to_path_buf(),
        images: files.len(),
        duplicates: Vec::new(),
        skipped: others
            .into_iter()
            .map(|file| Skipped {
                file,
                reason: format!("not an image file ({})", IMAGE_EXTENSIONS.join(", ")),
            })
            .collect(),
        train: 0,
        test: 0,
    };

    // Hashes first, so that only one copy of each photo is decoded. Files are sorted, so the
    // copy kept is always the first by path.
    let mut first_of: BTreeMap<Hash, PathBuf> = BTreeMap::new();
    let mut unique: Vec<(PathBuf, String)> = Vec::new();
    for f in scan(&format!("hashing {domain}"), &files, |_, _| Ok(())) {
        match f.hash {
            Some(h) => match first_of.get(&h) {
                Some(kept) => report.duplicates.push((f.path, kept.clone())),
                None => {
                    first_of.insert(h, f.path.clone());
                    unique.push((f.path, hex(&h, NAME_DIGITS)));
                }
            },
            None => report.skipped.push(Skipped {
                file: f.path,
                reason: f.result.err().unwrap_or_default(),
            }),
        }
    }
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, name) in &unique {
        if let Some(first) = names.insert(name.clone(), path.clone()) {
            return Err(PrepareError::NameClash {
                first,
                second: path.clone(),
                name: name.clone(),
            });
        }
    }

    let pending = staging.join(domain);
    std::fs::create_dir_all(&pending).map_err(io(&pending))?;
    let paths: Vec<PathBuf> = unique.iter().map(|(p, _)| p.clone()).collect();
    let name_of: BTreeMap<&Path, &str> = unique
        .iter()
        .map(|(p, n)| (p.as_path(), n.as_str()))
        .collect();
    let faces = FaceFinder::default();
    let mut written = BTreeSet::new();
    for f in scan(&format!("preparing {domain}"), &paths, |path, bytes| {
        let square = square_image(bytes, settings, &faces)?;
        let name = name_of.get(path).copied().unwrap_or_default();
        write_png(&pending.join(format!("{name}.png")), &square)?;
        Ok(name.to_string())
    }) {
        match f.result {
            Ok(name) => {
                written.insert(name);
            }
            Err(reason) => report.skipped.push(Skipped {
                file: f.path,
                reason,
            }),
        }
    }
    report.skipped.sort_by(|x, y| x.file.cmp(&y.file));

    // The split: a seeded shuffle of the sorted names, the first ones for testing.
    let mut order: Vec<&String> = written.iter().collect();
    let test = match settings.test {
        TestSplit::Count(n) => n,
        TestSplit::Fraction(f) => (f * order.len() as f64).round() as usize,
    };
    if test >= order.len() {
        return Err(PrepareError::TooFew {
            dir: source.to_path_buf(),
            usable: order.len(),
            test,
        });
    }
    let mut positions: Vec<usize> = (0..order.len()).collect();
    shuffle(
        &mut positions,
        &mut SplitMix64::for_stream(&[settings.seed, index]),
    );
    order = positions.iter().map(|&i| order[i]).collect();
    let [test_dir, train_dir] = ["test", "train"].map(|f| staging.join(format!("{f}{domain}")));
    for dir in [&test_dir, &train_dir] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    for (k, name) in order.iter().enumerate() {
        let dir = if k < test { &test_dir } else { &train_dir };
        let file = format!("{name}.png");
        std::fs::rename(pending.join(&file), dir.join(&file)).map_err(io(dir))?;
    }
    std::fs::remove_dir(&pending).map_err(io(&pending))?;
    report.test = test;
    report.train = order.len() - test;
    Ok(report)
}

/// The decoded photo's square (face or centre), resized as inference resizes.
fn square_image(
    bytes: &[u8],
    settings: &PrepareSettings,
    faces: &FaceFinder,
) -> Result<RgbImage, String> {
    let rgb = decode_rgb(bytes, settings.max_pixels).map_err(|e| e.to_string())?;
    let (width, height) = rgb.dimensions();
    let region = if settings.face {
        let face = faces.largest(&rgb).ok_or("no face found")?;
        square_around(face, width, height)
    } else {
        center_square(width, height)
    };
    Ok(cut_and_resize(&rgb, region, settings.size))
}

/// `image` as a PNG with fixed settings (so the same pixels give the same bytes) and no
/// metadata. Never replaces a file: two photos whose names clash are refused, not merged.
fn write_png(path: &Path, image: &RgbImage) -> Result<(), String> {
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Default, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("cannot encode: {e}"))?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(&png))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Refuses an output inside an input, and an input inside a folder the output's layout
/// replaces: prepare never writes into, or deletes, the photos it reads.
fn check_paths(inputs: &[&Path], output: &Path) -> Result<(), PrepareError> {
    let out = resolved(output)?;
    for &input in inputs {
        let dir = input.canonicalize().map_err(io(input))?;
        if out.starts_with(&dir) {
            return Err(PrepareError::OutputInInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
        for folder in ["trainA", "testA", "trainB", "testB", STAGING] {
            if dir.starts_with(out.join(folder)) {
                return Err(PrepareError::InputInOutput {
                    input: input.to_path_buf(),
                    folder: output.join(folder),
                });
            }
        }
    }
    Ok(())
}

/// `path` made absolute with its existing part canonical (links and `..` resolved), for a
/// folder that may not exist yet.
fn resolved(path: &Path) -> Result<PathBuf, PrepareError> {
    let absolute = std::path::absolute(path).map_err(io(path))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().map_err(io(existing))?;
    out.extend(rest.iter().rev());
    Ok(out)
}

fn remove_dir_if_any(dir: &Path) -> Result<(), PrepareError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(dir)(e)),
        _ => Ok(()),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PrepareError + '_ {
    move |cause| PrepareError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.domains {
            writeln!(
                f,
                "{} ({}): {} image files, {} duplicates removed, {} skipped; {} train, {} test",
                d.domain,
                d.source.display(),
                d.images,
                d.duplicates.len(),
                d.skipped.len(),
                d.train,
                d.test
            )?;
        }
        writeln!(f, "wrote {}", self.output.display())
    }
}
