//! The `ugatit-infer` binary end to end: an official-format `.pt` translated as the PyTorch
//! reference translates it.

use std::path::PathBuf;

use assert_cmd::Command;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-store/tests/fixtures")
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

fn infer() -> Command {
    let mut c = Command::cargo_bin("ugatit-infer").unwrap();
    c.args(["translate", "--device", "cpu", "--model"])
        .arg(fixture("full_96_ch4_r2/official.pt"));
    c
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

#[test]
fn a_folder_with_bad_files_still_writes_every_good_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    std::fs::create_dir_all(src.join("nested")).unwrap();
    let good = std::fs::read(fixture("full_96_ch4_r2/data/testA/a.png")).unwrap();
    std::fs::write(src.join("one.png"), &good).unwrap();
    std::fs::write(src.join("nested/two.png"), &good).unwrap();
    std::fs::write(src.join("empty.png"), b"").unwrap();
    std::fs::write(src.join("text.png"), b"not an image at all").unwrap();
    std::fs::write(src.join("cut.png"), &good[..good.len() / 2]).unwrap();
    let out = dir.path().join("out");
    let a = infer().arg("-o").arg(&out).arg(&src).assert().code(2);
    let e = stderr(&a);
    assert!(e.contains("empty.png: empty file"), "{e}");
    assert!(e.contains("text.png: not a readable image"), "{e}");
    assert!(e.contains("cut.png: "), "{e}");
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error: ")).count(),
        3,
        "{e}"
    );
    assert!(out.join("one.png").is_file() && out.join("nested/two.png").is_file());
    let summary = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(summary.contains("translated 2 of 5 images"), "{summary}");
}

#[test]
fn too_large_images_and_crops_outside_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("full_96_ch4_r2/data/testA/a.png");
    // The stderr of a run over `input` with `args` that must fail with exit code 2.
    let refused = |args: &[&str]| {
        let a = infer()
            .args(args)
            .arg("-o")
            .arg(dir.path())
            .arg(&input)
            .assert()
            .code(2);
        stderr(&a)
    };
    for (args, says) in [
        (
            &["--max-pixels", "5000"][..],
            "a.png: 96x96 is 9216 pixels, more than --max-pixels 5000",
        ),
        (
            &["--crop", "50,50,60,10"][..],
            "crop 50,50,60,10 is outside the 96x96 image",
        ),
        (
            &["--crop", "auto"][..],
            "no face found (pass --crop-fallback center",
        ),
    ] {
        let e = refused(args);
        assert!(e.contains(says), "{e}");
    }
    infer()
        .args(["--crop", "auto", "--crop-fallback", "center", "-o"])
        .arg(dir.path())
        .arg(&input)
        .assert()
        .success();
}

#[test]
fn existing_results_and_inputs_are_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.png");
    std::fs::copy(fixture("full_96_ch4_r2/data/testA/a.png"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // Results into the input's own folder, same name and format: refused even with --overwrite.
    let a = infer()
        .args(["--overwrite", "-o"])
        .arg(dir.path())
        .arg(&input)
        .assert()
        .code(2);
    assert!(
        stderr(&a).contains("is an input; refusing to write over it"),
        "{}",
        stderr(&a)
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let out = dir.path().join("out");
    infer().arg("-o").arg(&out).arg(&input).assert().success();
    let a = infer().arg("-o").arg(&out).arg(&input).assert().code(2);
    assert!(
        stderr(&a).contains("exists (pass --overwrite to replace it)"),
        "{}",
        stderr(&a)
    );
    infer()
        .args(["--overwrite", "--format", "jpg", "--heatmap", "-o"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    assert!(out.join("a.jpg").is_file() && out.join("a_heatmap.jpg").is_file());
}

/// A folder `in` under `dir` with three of the fixtures' images, `0.png` to `2.png`.
fn three_inputs(dir: &std::path::Path) -> PathBuf {
    let src = dir.join("in");
    std::fs::create_dir_all(&src).unwrap();
    for (i, f) in [
        "full_96_ch4_r2/data/testA/a.png",
        "full_96_ch4_r2/data/testB/b.png",
        "light_128_ch8_r3/data/testA/a.png",
    ]
    .iter()
    .enumerate()
    {
        std::fs::copy(fixture(f), src.join(format!("{i}.png"))).unwrap();
    }
    src
}

#[test]
fn batches_write_the_same_files_as_single_images() {
    let dir = tempfile::tempdir().unwrap();
    let src = three_inputs(dir.path());
    let (one, four) = (dir.path().join("one"), dir.path().join("four"));
    infer().arg("-o").arg(&one).arg(&src).assert().success();
    infer()
        .args(["--batch", "4", "-o"])
        .arg(&four)
        .arg(&src)
        .assert()
        .success();
    for i in 0..3 {
        let a = image::open(one.join(format!("{i}.png"))).unwrap().to_rgb8();
        let b = image::open(four.join(format!("{i}.png")))
            .unwrap()
            .to_rgb8();
        assert!(max_grey_level_difference(&a, &b) <= 1, "image {i}");
    }
}

/// `translate` on the device `UGATIT_TEST_DEVICE` names (the test command runs this on wgpu in
/// the wgpu build), in batches of 2 and with heatmaps, writes what the CPU writes within 1 grey
/// level.
#[test]
fn the_test_device_translates_as_the_cpu_does() {
    let device = ugatit_io::device::test_device().to_string();
    let dir = tempfile::tempdir().unwrap();
    let src = three_inputs(dir.path());
    let run = |device: &str, out: &std::path::Path| {
        Command::cargo_bin("ugatit-infer")
            .unwrap()
            .args(["translate", "--device", device, "--batch", "2", "--heatmap"])
            .arg("--model")
            .arg(fixture("full_96_ch4_r2/official.pt"))
            .arg("-o")
            .arg(out)
            .arg(&src)
            .assert()
            .success();
    };
    let (cpu, other) = (dir.path().join("cpu"), dir.path().join("other"));
    run("cpu", &cpu);
    run(&device, &other);
    for i in 0..3 {
        for name in [format!("{i}.png"), format!("{i}_heatmap.png")] {
            let a = image::open(cpu.join(&name)).unwrap().to_rgb8();
            let b = image::open(other.join(&name)).unwrap().to_rgb8();
            let d = max_grey_level_difference(&a, &b);
            println!("{name} on {device}: {d} grey levels from the CPU");
            assert!(d <= 1, "{name} on {device}: {d} grey levels from the CPU");
        }
    }
}

#[test]
fn tensorflow_checkpoints_translate_like_the_official_tf_code() {
    let out = tempfile::tempdir().unwrap();
    for case in ["full_64_ch8", "light_64_ch8"] {
        for direction in ["a2b", "b2a"] {
            let dir = out.path().join(format!("{case}-{direction}"));
            let tf = fixture(&format!("tf/{case}"));
            Command::cargo_bin("ugatit-infer")
                .unwrap()
                .args([
                    "translate",
                    "--device",
                    "cpu",
                    "--size",
                    "64",
                    "--direction",
                    direction,
                    "--model",
                ])
                .arg(tf.join("checkpoint"))
                .arg("-o")
                .arg(&dir)
                .arg(tf.join("input.png"))
                .assert()
                .success();
            let got = image::open(dir.join("input.png")).unwrap().to_rgb8();
            let want = image::open(tf.join(format!("expect_{direction}.png")))
                .unwrap()
                .to_rgb8();
            let d = max_grey_level_difference(&got, &want);
            assert!(d <= 2, "{case} {direction}: {d} grey levels");
        }
    }
}

#[test]
fn bench_prints_one_json_line_whatever_the_model_path_holds() {
    // A path with a quote, a backslash and a control character: Rust's `{:?}` escapes the last
    // as `\u{7}`, which is no JSON.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("odd \"name\\ \u{7}.pt");
    std::fs::copy(fixture("light_128_ch8_r3/official.pt"), &model).unwrap();
    let out = Command::cargo_bin("ugatit-infer")
        .unwrap()
        .args([
            "bench", "--device", "cpu", "--repeat", "1", "--size", "32", "--model",
        ])
        .arg(&model)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let line = String::from_utf8(out).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    let report: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["model"], model.display().to_string());
    assert_eq!(report["size"], 32);
    assert_eq!(report["batch"], 1);
    assert_eq!(report["precision"], "f32");
    assert!(report["median_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_runs_in_the_precision_asked_for_and_refuses_others() {
    let model = fixture("light_128_ch8_r3/official.pt");
    let bench = |precision: &str| {
        Command::cargo_bin("ugatit-infer")
            .unwrap()
            .args(["bench", "--device", "cpu", "--repeat", "1", "--size", "32"])
            .args(["--precision", precision, "--model"])
            .arg(&model)
            .output()
            .unwrap()
    };
    let out = bench("bf16");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["precision"], "bf16");
    let out = bench("f8");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("f8"));
}

/// Half precision on the device `UGATIT_TEST_DEVICE` names: where the device has the type, a
/// translation within a few grey levels of float32's; where it has not (lavapipe and WGSL have
/// no bfloat16), one line naming `--device`, the adapter and the type, before any work.
#[test]
fn half_precision_runs_where_the_device_has_it_and_is_refused_in_one_line_elsewhere() {
    let device = ugatit_io::device::test_device();
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("full_96_ch4_r2/data/testA/a.png");
    let run = |precision: &str, out: &std::path::Path| {
        Command::cargo_bin("ugatit-infer")
            .unwrap()
            .args(["translate", "--device", &device.to_string()])
            .args(["--precision", precision, "--model"])
            .arg(fixture("full_96_ch4_r2/official.pt"))
            .arg("-o")
            .arg(out)
            .arg(&input)
            .output()
            .unwrap()
    };
    let f32_out = dir.path().join("f32");
    assert!(run("f32", &f32_out).status.success());
    let want = image::open(f32_out.join("a.png")).unwrap().to_rgb8();
    for precision in [ugatit_model::Precision::Bf16, ugatit_model::Precision::F16] {
        let out = dir.path().join(precision.as_str());
        let result = run(precision.as_str(), &out);
        let stderr = String::from_utf8_lossy(&result.stderr).to_string();
        match device.check_precision(precision) {
            Ok(()) => {
                assert!(result.status.success(), "{precision}: {stderr}");
                let got = image::open(out.join("a.png")).unwrap().to_rgb8();
                let d = max_grey_level_difference(&got, &want);
                println!("{precision} on {device}: {d} grey levels from f32");
                assert!(d <= 8, "{precision} on {device}: {d} grey levels from f32");
            }
            Err(e) => {
                println!("{precision} on {device}: refused: {e}");
                assert!(!result.status.success());
                assert_eq!(stderr.trim_end(), format!("error: {e}"));
                assert!(stderr.contains(&format!("no {precision} arithmetic")));
                assert!(!out.exists(), "nothing written before the refusal");
            }
        }
    }
}
