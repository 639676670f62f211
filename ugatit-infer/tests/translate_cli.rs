//! The `ugatit-infer` binary end to end: an official-format `.pt` translated as the PyTorch
//! reference translates it.

use std::path::PathBuf;

use assert_cmd::Command;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-model/tests/fixtures")
        .join(path)
}

fn max_grey_level_difference(a: &image::RgbImage, b: &image::RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn official_checkpoint_translates_like_the_reference() {
    let out = tempfile::tempdir().unwrap();
    for (direction, input, expected) in [
        ("a2b", "data/testA/a.png", "expect_a2b.png"),
        ("b2a", "data/testB/b.png", "expect_b2a.png"),
    ] {
        Command::cargo_bin("ugatit-infer")
            .unwrap()
            .args([
                "translate",
                "--device",
                "cpu",
                "--direction",
                direction,
                "--model",
            ])
            .arg(fixture("full_96_ch4_r2/official.pt"))
            .arg("--output")
            .arg(out.path())
            .arg(fixture(&format!("full_96_ch4_r2/{input}")))
            .assert()
            .success();
        let stem = PathBuf::from(input).file_stem().unwrap().to_owned();
        let got = image::open(out.path().join(stem).with_extension("png"))
            .unwrap()
            .to_rgb8();
        let want = image::open(fixture(&format!("full_96_ch4_r2/{expected}")))
            .unwrap()
            .to_rgb8();
        let d = max_grey_level_difference(&got, &want);
        assert!(d <= 2, "{direction}: {d} grey levels from the reference");
    }
}

#[test]
fn a_light_official_checkpoint_needs_no_size_and_accepts_one() {
    let out = tempfile::tempdir().unwrap();
    let input = fixture("light_128_ch8_r3/data/testA/a.png");
    Command::cargo_bin("ugatit-infer")
        .unwrap()
        .args(["translate", "--device", "cpu", "--size", "128", "--model"])
        .arg(fixture("light_128_ch8_r3/official.pt"))
        .arg("-o")
        .arg(out.path())
        .arg(&input)
        .assert()
        .success();
    let got = image::open(out.path().join("a.png")).unwrap().to_rgb8();
    let want = image::open(fixture("light_128_ch8_r3/expect_a2b.png"))
        .unwrap()
        .to_rgb8();
    assert!(max_grey_level_difference(&got, &want) <= 2);
}

#[test]
fn bad_inputs_are_reported_and_the_rest_are_translated() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let out = dir.path().join("out");
    let assert = Command::cargo_bin("ugatit-infer")
        .unwrap()
        .args(["translate", "--device", "cpu", "--model"])
        .arg(fixture("full_96_ch4_r2/official.pt"))
        .arg("-o")
        .arg(&out)
        .arg(&broken)
        .arg(fixture("full_96_ch4_r2/data/testA/a.png"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("broken.png"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.join("a.png").is_file());
}

#[test]
fn a_size_that_contradicts_a_full_model_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let assert = Command::cargo_bin("ugatit-infer")
        .unwrap()
        .args(["translate", "--device", "cpu", "--size", "128", "--model"])
        .arg(fixture("full_96_ch4_r2/official.pt"))
        .arg("-o")
        .arg(out.path())
        .arg(fixture("full_96_ch4_r2/data/testA/a.png"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("--size 128 contradicts the model"),
        "{stderr}"
    );
}

#[test]
fn a_bad_model_path_is_one_line() {
    let out = tempfile::tempdir().unwrap();
    let assert = Command::cargo_bin("ugatit-infer")
        .unwrap()
        .args(["translate", "--device", "cpu", "--model"])
        .arg(fixture("bad/missing_key.pt"))
        .arg("-o")
        .arg(out.path())
        .arg(fixture("full_96_ch4_r2/data/testA/a.png"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("missing_key.pt: missing tensor genA2B.UpBlock2.8.beta"),
        "{stderr}"
    );
}
