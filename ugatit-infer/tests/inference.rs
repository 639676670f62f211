//! The inference library: crop geometry, face crops, batches, dtype exports, decoding.

use std::path::PathBuf;

use burn::prelude::*;
use image::RgbImage;
use ugatit_infer::crop::Region;
use ugatit_infer::face::FaceFinder;
use ugatit_infer::{Crop, Options, Translator};
use ugatit_io::read_rgb;
use ugatit_model::{Cpu, Direction};
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};

fn model_fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-store/tests/fixtures")
        .join(path)
}

fn face_photo() -> RgbImage {
    read_rgb(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/face.jpg"),
        u64::MAX,
    )
    .unwrap()
}

fn light() -> Translator<Cpu> {
    Translator::load(
        &model_fixture("light_128_ch8_r3/official.pt"),
        Direction::A2B,
        Some(64),
        &Default::default(),
    )
    .unwrap()
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn a_crop_box_translates_exactly_that_region_and_keep_size_restores_its_size() {
    let t = light();
    let photo = face_photo();
    let region = Region {
        x: 30,
        y: 50,
        width: 120,
        height: 90,
    };
    let boxed = t
        .translate(
            &photo,
            &Options {
                crop: Crop::Box(region),
                keep_size: true,
                heatmap: true,
            },
        )
        .unwrap();
    assert_eq!(boxed.image.dimensions(), (120, 90));
    assert_eq!(boxed.heatmap.as_ref().unwrap().dimensions(), (120, 90));
    assert!(boxed.stretched);
    // The same region cut out by hand and translated whole gives the same result.
    let cut = image::imageops::crop_imm(&photo, 30, 50, 120, 90).to_image();
    let whole = t
        .translate(
            &cut,
            &Options {
                keep_size: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(max_diff(&boxed.image, &whole.image), 0);
    // Without --keep-size the result is the model's square.
    let square = t
        .translate(
            &photo,
            &Options {
                crop: Crop::Box(region),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(square.image.dimensions(), (64, 64));
    let outside = Region {
        x: 200,
        y: 0,
        width: 50,
        height: 50,
    };
    let e = t
        .translate(
            &photo,
            &Options {
                crop: Crop::Box(outside),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "crop 200,0,50,50 is outside the 240x240 image"
    );
}

#[test]
fn auto_crop_finds_the_largest_face() {
    let face = FaceFinder::default()
        .largest(&face_photo())
        .expect("a face");
    let (cx, cy) = (face.x + face.width / 2, face.y + face.height / 2);
    // The fixture's largest face spans about x 76-140, y 80-140 (tests/fixtures/README.md).
    assert!(
        (76..140).contains(&cx) && (80..140).contains(&cy),
        "{face:?}"
    );
    let region = Crop::Auto {
        fallback_center: false,
    }
    .region(&face_photo(), &FaceFinder::default())
    .unwrap();
    assert_eq!(region.width, region.height);
    assert!(region.x <= face.x && region.x + region.width >= face.x + face.width);
    // An image without a face: an error, or the central square on request.
    let flat = RgbImage::from_pixel(100, 60, image::Rgb([90, 140, 200]));
    let none = Crop::Auto {
        fallback_center: false,
    }
    .region(&flat, &FaceFinder::default());
    assert!(none.unwrap_err().to_string().contains("no face found"));
    let centre = Crop::Auto {
        fallback_center: true,
    }
    .region(&flat, &FaceFinder::default())
    .unwrap();
    assert_eq!(
        centre,
        Region {
            x: 20,
            y: 0,
            width: 60,
            height: 60
        }
    );
}

#[test]
fn a_batch_equals_one_by_one() {
    let t = light();
    let x = Tensor::<Cpu, 4>::random(
        [4, 3, 64, 64],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &Default::default(),
    );
    let batched = t.forward(x.clone());
    for i in 0..4 {
        let one = t.forward(x.clone().narrow(0, i, 1));
        for (a, b) in [
            (
                batched.image.clone().narrow(0, i, 1).into_data(),
                one.image.into_data(),
            ),
            (
                batched.heatmap.clone().narrow(0, i, 1).into_data(),
                one.heatmap.into_data(),
            ),
        ] {
            let d = a
                .iter::<f32>()
                .zip(b.iter::<f32>())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(d <= 1e-5, "image {i}: {d}");
        }
    }
}

#[test]
fn an_f16_export_translates_like_f32() {
    let dir = tempfile::tempdir().unwrap();
    let src = model_fixture("full_96_ch4_r2/official.pt");
    let (f32_path, f16_path) = (
        dir.path().join("g32.safetensors"),
        dir.path().join("g16.safetensors"),
    );
    let a = export_generator(
        &src,
        Direction::A2B,
        &f32_path,
        ExportFormat::Safetensors,
        StoreDtype::F32,
    )
    .unwrap();
    let b = export_generator(
        &src,
        Direction::A2B,
        &f16_path,
        ExportFormat::Safetensors,
        StoreDtype::F16,
    )
    .unwrap();
    assert!(
        b.bytes * 10 < a.bytes * 6,
        "f16 is about half: {} vs {}",
        b.bytes,
        a.bytes
    );
    let load = |p: &PathBuf| {
        Translator::<Cpu>::load(p, Direction::A2B, None, &Default::default()).unwrap()
    };
    let (t32, t16) = (load(&f32_path), load(&f16_path));
    let photo = face_photo();
    let (o32, o16) = (
        t32.translate(&photo, &Options::default()).unwrap(),
        t16.translate(&photo, &Options::default()).unwrap(),
    );
    let close = o32
        .image
        .as_raw()
        .iter()
        .zip(o16.image.as_raw())
        .filter(|(x, y)| x.abs_diff(**y) <= 2)
        .count();
    let share = close as f64 / o32.image.as_raw().len() as f64;
    assert!(share >= 0.99, "{share}");
}

/// A JPEG with an EXIF APP1 segment whose only entry is Orientation = 6 (rotate 90 clockwise).
fn jpeg_with_orientation_6(w: u32, h: u32) -> Vec<u8> {
    let mut plain = Vec::new();
    RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut plain),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let mut exif = b"Exif\0\0II*\0\x08\0\0\0\x01\0".to_vec();
    exif.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let len = (exif.len() + 2) as u16;
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&exif);
    out.extend_from_slice(&plain[2..]);
    out
}

#[test]
fn decoding_applies_exif_orientation_and_converts_colour_types() {
    let dir = tempfile::tempdir().unwrap();
    let rotated = dir.path().join("rotated.jpg");
    std::fs::write(&rotated, jpeg_with_orientation_6(40, 20)).unwrap();
    assert_eq!(read_rgb(&rotated, u64::MAX).unwrap().dimensions(), (20, 40));
    let cases: Vec<(&str, image::DynamicImage)> = vec![
        (
            "gray16.png",
            image::DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
                5,
                4,
                image::Luma([40000u16]),
            )),
        ),
        (
            "rgba.png",
            image::DynamicImage::ImageRgba8(image::ImageBuffer::from_pixel(
                5,
                4,
                image::Rgba([1u8, 2, 3, 0]),
            )),
        ),
        (
            "one.png",
            image::DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9]))),
        ),
    ];
    let t = light();
    for (name, img) in cases {
        let path = dir.path().join(name);
        img.save(&path).unwrap();
        let rgb = read_rgb(&path, u64::MAX).unwrap();
        assert_eq!(rgb.dimensions(), (img.width(), img.height()), "{name}");
        // Even a 1x1 image is upscaled and translated.
        let out = t.translate(&rgb, &Options::default()).unwrap();
        assert_eq!(out.image.dimensions(), (64, 64));
    }
    let gray = read_rgb(&dir.path().join("gray16.png"), u64::MAX).unwrap();
    assert_eq!(gray.get_pixel(0, 0).0, [156, 156, 156]);
}

/// `--precision`: bfloat16 and float16 convolutions and linear layers (float32 weights, norms
/// and everything else) translate within a few grey levels of float32, for a light and a full
/// official model.
#[test]
fn half_precision_translations_stay_within_a_few_grey_levels_of_float32() {
    use ugatit_model::Precision;
    let photo = face_photo();
    for (fixture, size) in [
        ("light_128_ch8_r3/official.pt", 128),
        ("full_96_ch4_r2/official.pt", 96),
    ] {
        let load = |p| {
            Translator::<Cpu>::load(
                &model_fixture(fixture),
                Direction::A2B,
                Some(size),
                &Default::default(),
            )
            .unwrap()
            .with_precision(p)
        };
        let options = Options {
            crop: Crop::Center,
            keep_size: false,
            heatmap: true,
        };
        let want = load(Precision::F32).translate(&photo, &options).unwrap();
        for (p, tol) in [
            (Precision::Bf16, BF16_GREY_LEVELS),
            (Precision::F16, F16_GREY_LEVELS),
        ] {
            let got = load(p).translate(&photo, &options).unwrap();
            let d = max_diff(&got.image, &want.image);
            println!("{fixture} {p}: max {d} grey levels from f32");
            assert!(
                d <= tol,
                "{fixture} {p}: {d} grey levels from f32 (> {tol})"
            );
        }
    }
}

/// Grey levels a bfloat16 translation may differ from float32's (measured: 5 light, 7 full).
const BF16_GREY_LEVELS: u8 = 10;
/// Grey levels a float16 translation may differ from float32's (measured: 3 light, 3 full).
const F16_GREY_LEVELS: u8 = 6;

/// The command's file loop as a library call: each result written with its heatmap, a bad
/// file reported and the rest translated, an existing result left alone without `overwrite`,
/// and the same pixels as translating the image directly.
#[test]
fn translate_files_writes_each_result_and_reports_each_bad_file() {
    use ugatit_infer::files::{translate_files, FileOptions, Summary};
    use ugatit_infer::inputs::{plan, Format};
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    // Not square: stretched to the model's square, and counted.
    let photo = image::imageops::crop_imm(&face_photo(), 0, 0, 240, 200).to_image();
    photo.save(inputs.join("face.png")).unwrap();
    std::fs::write(inputs.join("broken.png"), b"not a png").unwrap();
    let out = dir.path().join("out");
    let jobs = plan(
        &[inputs.to_str().unwrap().to_string()],
        &out,
        Format::Png,
        true,
    )
    .unwrap();
    let translator = light();
    let options = FileOptions {
        batch: 2,
        overwrite: false,
        max_pixels: u64::MAX,
        image: Options {
            heatmap: true,
            ..Options::default()
        },
    };
    let run = || {
        let mut reports = Vec::new();
        let mut finished = 0;
        let summary = translate_files(
            &translator,
            &jobs,
            &options,
            |job, e| reports.push(format!("{}: {e}", job.input.display())),
            |n| finished += n,
        );
        assert_eq!(finished, 2);
        (summary, reports)
    };
    let (summary, reports) = run();
    assert_eq!(
        summary,
        Summary {
            done: 1,
            failed: 1,
            stretched: 1
        }
    );
    assert_eq!(reports.len(), 1);
    assert!(reports[0].contains("broken.png: "), "{reports:?}");
    let written = read_rgb(&out.join("face.png"), u64::MAX).unwrap();
    assert!(out.join("face_heatmap.png").is_file());
    let direct = translator
        .translate(&photo, &Options::default())
        .unwrap()
        .image;
    assert_eq!(max_diff(&written, &direct), 0);

    // Again: the result exists, so it is refused (named), not written over.
    let (summary, reports) = run();
    assert_eq!((summary.done, summary.failed), (0, 2));
    assert!(
        reports
            .iter()
            .any(|r| r.contains("exists (pass --overwrite")),
        "{reports:?}"
    );
}
