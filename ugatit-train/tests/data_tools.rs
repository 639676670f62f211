//! `ugatit-train data check` and `data prepare` on folders of real image files made here: every
//! colour type and container quirk a phone or the web produces, planted problems, and a real
//! face photo (the inference fixture).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage};
use sha2::{Digest, Sha256};
use ugatit_io::face::FaceFinder;
use ugatit_io::image_file::read_rgb;
use ugatit_io::region::{center_square, cut_and_resize, square_around};

/// The inference tests' face photo: a crop of the Solvay conference picture in rustface.
fn face_photo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ugatit-infer/tests/fixtures/face.jpg")
}

/// A deterministic noisy gradient: no face, far from constant, different for every `seed`.
fn textured(width: u32, height: u32, seed: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (state >> 26) as u8;
        Rgb([
            (x * 255 / width) as u8 / 2 + noise,
            (y * 255 / height) as u8 / 2 + noise,
            noise.wrapping_mul(3),
        ])
    })
}

fn save(path: &Path, image: &DynamicImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save(path).unwrap();
}

fn save_rgb(path: &Path, image: RgbImage) {
    save(path, &DynamicImage::ImageRgb8(image));
}

/// A JPEG whose pixels are stored 120x60 (left half red, right half blue) with EXIF
/// Orientation 6 (rotate 90 clockwise), as a phone held upright stores them: upright it is
/// 60x120 with red on top.
fn jpeg_with_orientation_6() -> Vec<u8> {
    let stored = RgbImage::from_fn(120, 60, |x, _| {
        Rgb(if x < 60 { [220, 20, 20] } else { [20, 20, 220] })
    });
    let mut plain = Vec::new();
    stored
        .write_to(&mut Cursor::new(&mut plain), ImageFormat::Jpeg)
        .unwrap();
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) = 6.
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

/// A CMYK JPEG of one colour (given as RGB), written by Pillow (as Photoshop and print
/// workflows write them: Adobe APP14, inverted values); `image` cannot write CMYK.
fn cmyk_jpeg(path: &Path, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let script = "import sys; from PIL import Image; \
        Image.new('RGB', (48, 40), tuple(int(v) for v in sys.argv[2:5])).convert('CMYK')\
        .save(sys.argv[1], quality=95)";
    let status = std::process::Command::new("python3")
        .args(["-c", script, &path.display().to_string()])
        .args(rgb.map(|v| v.to_string()))
        .status()
        .expect("python3 (scripts/test.sh installs Pillow with scikit-image)");
    assert!(
        status.success(),
        "Pillow could not write {}",
        path.display()
    );
    let head = std::fs::read(path).unwrap();
    assert!(
        head.windows(5).any(|w| w == b"Adobe"),
        "not an Adobe CMYK JPEG"
    );
}

/// A PNG cut in half: its header is fine, its pixels end early.
fn truncated_png(seed: u32) -> Vec<u8> {
    let mut png = Vec::new();
    textured(64, 64, seed)
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    png.truncate(png.len() / 2);
    png
}

fn train() -> Command {
    Command::cargo_bin("ugatit-train").unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The data set with one of each planted problem: a copy of a training image in testA, a
/// truncated PNG, a text file named .jpg, a 16x16 image, a blank one, and an empty testB.
fn planted(root: &Path) {
    for folder in ["trainA", "trainB", "testA", "testB"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    for i in 0..3 {
        save_rgb(&root.join(format!("trainA/{i}.png")), textured(80, 72, i));
        save_rgb(
            &root.join(format!("trainB/{i}.jpg")),
            textured(90, 70, 10 + i),
        );
    }
    std::fs::copy(root.join("trainA/0.png"), root.join("testA/leak.png")).unwrap();
    save_rgb(&root.join("testA/own.png"), textured(80, 72, 20));
    std::fs::write(root.join("trainA/truncated.png"), truncated_png(30)).unwrap();
    std::fs::write(
        root.join("trainA/notes.jpg"),
        "not an image, whatever its name",
    )
    .unwrap();
    save_rgb(&root.join("trainA/tiny.png"), textured(16, 16, 31));
    save_rgb(
        &root.join("trainA/blank.png"),
        RgbImage::from_pixel(96, 96, Rgb([250, 250, 251])),
    );
    std::fs::write(root.join("trainA/readme.txt"), "sources").unwrap();
    cmyk_jpeg(&root.join("trainB/cmyk.jpg"), [40, 160, 90]);
}

#[test]
fn check_reports_every_planted_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    planted(root);
    let out = train()
        .args(["data", "check", "--root"])
        .arg(root)
        .assert()
        .code(2);
    let report = text(&out.get_output().stdout);
    for expected in [
        "trainA: 5 usable of 7 image files",
        "unusable: trainA/notes.jpg: not a readable image (not a PNG, JPEG, WebP, BMP or TIFF image)",
        "unusable: trainA/truncated.png: not a readable image",
        "tiny: trainA/tiny.png is 16x16",
        "nearly empty: trainA/blank.png",
        "ignored (not an image extension): trainA/readme.txt",
        "trainB: 4 usable of 4 image files",
        "colour modes: CMYK (1), RGB (3)",
        "testB: empty",
        "duplicates across train and test (a leak): trainA/0.png = testA/leak.png",
        "not usable",
    ] {
        assert!(report.contains(expected), "{expected:?} missing in:\n{report}");
    }
    // Images of fair size and texture are not flagged.
    assert!(!report.contains("tiny: trainA/0.png"), "{report}");
    assert!(!report.contains("nearly empty: trainA/1.png"), "{report}");

    let out = train()
        .args(["data", "check", "--json", "--root"])
        .arg(root)
        .assert()
        .code(2);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["ok"], false);
    let folders = json["folders"].as_array().unwrap();
    let status: Vec<&str> = folders
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["ok", "ok", "ok", "empty"]);
    let train_a = &folders[0];
    assert_eq!(train_a["images"], 7);
    assert_eq!(train_a["usable"], 5);
    assert_eq!(train_a["sizes"]["80x72"], 3);
    let unusable: Vec<&str> = train_a["unusable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["file"].as_str().unwrap())
        .collect();
    assert_eq!(unusable, ["trainA/notes.jpg", "trainA/truncated.png"]);
    assert_eq!(train_a["tiny"][0]["file"], "trainA/tiny.png");
    assert!(train_a["near_empty"][0]["std"].as_f64().unwrap() < 1.0);
    assert_eq!(folders[1]["modes"]["CMYK"], 1);
    let duplicates = json["duplicates"].as_array().unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0]["leak"], true);

    // With an image in testB the set is usable (exit 0) despite its warnings...
    save_rgb(&root.join("testB/one.png"), textured(80, 72, 40));
    let out = train()
        .args(["data", "check", "--root"])
        .arg(root)
        .assert()
        .success();
    assert!(text(&out.get_output().stdout).contains("ok: every folder has usable images"));
    // ...and a missing folder, or one whose every image is broken, is not.
    std::fs::remove_dir_all(root.join("testB")).unwrap();
    let out = train()
        .args(["data", "check", "--root"])
        .arg(root)
        .assert()
        .code(2);
    assert!(text(&out.get_output().stdout).contains("testB: missing"));
    std::fs::create_dir_all(root.join("testB")).unwrap();
    std::fs::write(root.join("testB/broken.png"), truncated_png(41)).unwrap();
    let out = train()
        .args(["data", "check", "--root"])
        .arg(root)
        .assert()
        .code(2);
    assert!(text(&out.get_output().stdout).contains("testB: no usable image (1 image files)"));
}

/// The name `prepare` gives the output of a source file: its content hash.
fn output_name(source: &Path) -> String {
    let hash = Sha256::digest(std::fs::read(source).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}.png", &hex[..16])
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for folder in ["trainA", "testA", "trainB", "testB"] {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Names in one layout folder.
fn names(files: &BTreeMap<String, Vec<u8>>, folder: &str) -> Vec<String> {
    files
        .keys()
        .filter_map(|k| k.strip_prefix(&format!("{folder}/")).map(str::to_string))
        .collect()
}

/// Domain A: every colour type and a rotated phone photo, one duplicate and three bad files;
/// domain B: plain JPEGs of assorted shapes.
fn raw_photos(root: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (root.join("raw_a"), root.join("raw_b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("phone.jpg"), jpeg_with_orientation_6()).unwrap();
    let gray = DynamicImage::ImageRgb8(textured(70, 50, 1)).to_luma8();
    save(&a.join("gray.png"), &DynamicImage::ImageLuma8(gray));
    save(
        &a.join("rgba.png"),
        &DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(textured(50, 70, 2)).to_rgba8()),
    );
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(64, 48, |x, y| {
        Rgb([x as u16 * 1000, y as u16 * 1300, 40000])
    });
    save(&a.join("deep16.png"), &DynamicImage::ImageRgb16(deep));
    cmyk_jpeg(&a.join("print.jpg"), [200, 120, 40]);
    std::fs::copy(face_photo(), a.join("solvay.jpg")).unwrap();
    std::fs::create_dir_all(a.join("sub")).unwrap();
    std::fs::copy(a.join("gray.png"), a.join("sub/gray_copy.png")).unwrap();
    std::fs::write(a.join("cut.png"), truncated_png(3)).unwrap();
    std::fs::write(a.join("notes.jpg"), "not an image").unwrap();
    std::fs::write(a.join("list.txt"), "photos").unwrap();
    for i in 0..5 {
        let (w, h) = [(90, 60), (60, 90), (64, 64), (200, 100), (33, 47)][i];
        save_rgb(&b.join(format!("{i}.jpg")), textured(w, h, 100 + i as u32));
    }
    (a, b)
}

/// `data prepare` at 32x32 with two test images a domain, split with seed 7 unless `extra`
/// gives another.
fn prepare(a: &Path, b: &Path, output: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    let seed = if extra.contains(&"--seed") {
        &[][..]
    } else {
        &["--seed", "7"][..]
    };
    train()
        .args(["data", "prepare", "--size", "32", "--test-count", "2"])
        .args(seed)
        .arg("--a")
        .arg(a)
        .arg("--b")
        .arg(b)
        .arg("--output")
        .arg(output)
        .args(extra)
        .assert()
}

#[test]
fn prepare_writes_the_layout_from_mixed_photos_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = raw_photos(dir.path());
    let out = dir.path().join("set");
    let done = prepare(&a, &b, &out, &[]).success();
    let stderr = text(&done.get_output().stderr);
    let stdout = text(&done.get_output().stdout);
    // One line for each file left out, naming it and why.
    for expected in [
        format!(
            "skipped: {}: not a readable image",
            a.join("cut.png").display()
        ),
        format!(
            "skipped: {}: not a readable image (not a PNG, JPEG",
            a.join("notes.jpg").display()
        ),
        format!(
            "skipped: {}: not an image file",
            a.join("list.txt").display()
        ),
        format!(
            "duplicate: {} (same as {})",
            a.join("sub/gray_copy.png").display(),
            a.join("gray.png").display()
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "{expected:?} missing in:\n{stderr}"
        );
    }
    assert!(
        stdout.contains("9 image files, 1 duplicates removed, 3 skipped; 4 train, 2 test"),
        "{stdout}"
    );
    assert!(stdout.contains("5 image files, 0 duplicates removed, 0 skipped; 3 train, 2 test"));

    let written = files(&out);
    // Named by the source's content: the six usable photos of A, each once.
    let mut expected_a: Vec<String> = ["phone.jpg", "gray.png", "rgba.png", "deep16.png"]
        .iter()
        .chain(&["print.jpg", "solvay.jpg"])
        .map(|n| output_name(&a.join(n)))
        .collect();
    expected_a.sort();
    let mut got_a = names(&written, "trainA");
    got_a.extend(names(&written, "testA"));
    got_a.sort();
    assert_eq!(got_a, expected_a);
    assert_eq!(names(&written, "testA").len(), 2);
    assert_eq!(names(&written, "trainB").len(), 3);
    assert_eq!(names(&written, "testB").len(), 2);
    for (name, bytes) in &written {
        let image = image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap();
        assert_eq!((image.width(), image.height()), (32, 32), "{name}");
        assert!(matches!(image, DynamicImage::ImageRgb8(_)), "{name}");
    }
    let output_of = |source: &str| {
        let name = output_name(&a.join(source));
        let key = written
            .keys()
            .find(|k| k.ends_with(&name))
            .unwrap_or_else(|| panic!("no output for {source}"));
        image::load_from_memory(&written[key]).unwrap().to_rgb8()
    };
    // EXIF applied before the centre crop: red on top, blue below (stored, it was left/right).
    let phone = output_of("phone.jpg");
    let (top, bottom) = (phone.get_pixel(16, 3).0, phone.get_pixel(16, 28).0);
    assert!(top[0] > 180 && top[2] < 70, "{top:?}");
    assert!(bottom[2] > 180 && bottom[0] < 70, "{bottom:?}");
    let (left, right) = (phone.get_pixel(3, 3).0, phone.get_pixel(28, 3).0);
    assert!(
        left.iter().zip(right).all(|(l, r)| l.abs_diff(r) <= 3),
        "{left:?} {right:?}"
    );
    // CMYK decoded to the colour it was made from; 16-bit scaled to 8 bits, not clipped.
    let print = output_of("print.jpg");
    for (got, want) in print.get_pixel(16, 16).0.iter().zip([200u8, 120, 40]) {
        assert!(got.abs_diff(want) <= 12, "{:?}", print.get_pixel(16, 16));
    }
    let deep = output_of("deep16.png");
    assert!(
        deep.pixels().all(|p| p.0[2].abs_diff(156) <= 1),
        "{:?}",
        deep.get_pixel(0, 0)
    );
    // The centre square, resized as inference resizes.
    let solvay = read_rgb(&face_photo(), u64::MAX).unwrap();
    let centre = cut_and_resize(&solvay, center_square(240, 240), 32);
    assert_eq!(output_of("solvay.jpg"), centre);

    // Twice the same arguments, the same bytes: in a new folder, and over the old one.
    let again = dir.path().join("again");
    prepare(&a, &b, &again, &[]).success();
    assert_eq!(files(&again), written);
    let refused = prepare(&a, &b, &out, &[]).code(1);
    assert!(text(&refused.get_output().stderr).contains("already holds files: pass --overwrite"));
    prepare(&a, &b, &out, &["--overwrite"]).success();
    assert_eq!(files(&out), written);
    assert!(!out.join(".prepare-staging").exists());
    // Another seed, another split of the same files.
    let reseeded = dir.path().join("reseeded");
    prepare(&a, &b, &reseeded, &["--seed", "8"]).success();
    let other = files(&reseeded);
    assert_eq!(other.len(), written.len());
    assert_ne!(names(&other, "testA"), names(&written, "testA"));

    // A share instead of a count: half of A's six.
    let half = dir.path().join("half");
    train()
        .args(["data", "prepare", "--size", "32", "--test-fraction", "0.5"])
        .args([
            "--a",
            &a.display().to_string(),
            "--b",
            &b.display().to_string(),
        ])
        .args(["--output", &half.display().to_string()])
        .assert()
        .success();
    assert_eq!(names(&files(&half), "testA").len(), 3);
}

#[test]
fn prepare_never_writes_into_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = raw_photos(dir.path());
    let before = std::fs::read_dir(&a).unwrap().count();
    let out = prepare(&a, &b, &a.join("set"), &[]).code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("is inside the input"), "{stderr}");
    assert_eq!(std::fs::read_dir(&a).unwrap().count(), before);
    // Photos kept in a folder the output would replace are refused too.
    let set = dir.path().join("set");
    std::fs::create_dir_all(set.join("trainA")).unwrap();
    std::fs::rename(&b, set.join("trainA/raw")).unwrap();
    let out = prepare(&a, &set.join("trainA/raw"), &set, &["--overwrite"]).code(1);
    assert!(text(&out.get_output().stderr).contains("which prepare writes"));
    assert_eq!(
        std::fs::read_dir(set.join("trainA/raw")).unwrap().count(),
        5
    );
    // Too few photos for the test split: nothing is written.
    let out = train()
        .args(["data", "prepare", "--test-count", "6"])
        .args([
            "--a",
            &a.display().to_string(),
            "--b",
            &a.display().to_string(),
        ])
        .args(["--output", &dir.path().join("few").display().to_string()])
        .assert()
        .code(1);
    assert!(text(&out.get_output().stderr).contains("6 usable images, too few for 6 test images"));
    assert!(!dir.path().join("few/trainA").exists());
}

#[test]
fn prepare_with_face_crops_around_the_face_and_skips_photos_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for raw in [&a, &b] {
        std::fs::create_dir_all(raw).unwrap();
        std::fs::copy(face_photo(), raw.join("face.jpg")).unwrap();
        save_rgb(&raw.join("scenery.png"), textured(120, 90, 5));
    }
    let out = dir.path().join("faces");
    let done = train()
        .args([
            "data",
            "prepare",
            "--face",
            "--size",
            "48",
            "--test-count",
            "0",
        ])
        .args([
            "--a",
            &a.display().to_string(),
            "--b",
            &b.display().to_string(),
        ])
        .args(["--output", &out.display().to_string()])
        .assert()
        .success();
    let stderr = text(&done.get_output().stderr);
    for raw in [&a, &b] {
        let line = format!(
            "skipped: {}: no face found",
            raw.join("scenery.png").display()
        );
        assert!(stderr.contains(&line), "{line:?} missing in:\n{stderr}");
    }
    let written = files(&out);
    assert_eq!(written.len(), 2);
    // The square translate --crop auto cuts: the detector's largest face, 1.8 times its size.
    let photo = read_rgb(&face_photo(), u64::MAX).unwrap();
    let face = FaceFinder::default()
        .largest(&photo)
        .expect("the fixture's face");
    let square = square_around(face, 240, 240);
    assert!(square.width < 200, "{square:?}");
    let expected = cut_and_resize(&photo, square, 48);
    let name = format!("trainA/{}", output_name(&face_photo()));
    let got = image::load_from_memory(&written[&name]).unwrap().to_rgb8();
    assert_eq!(got, expected);
    assert_ne!(got, cut_and_resize(&photo, center_square(240, 240), 48));
}
