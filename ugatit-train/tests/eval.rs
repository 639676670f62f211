//! Evaluation against Python references: the FID Inception's features against pytorch-fid's own
//! (`fixtures/eval/inception_features.json`: pytorch-fid's network with weights from a formula,
//! made again here and written as a `torch.save` file, so no torch is needed at test time; see
//! `fixtures/eval/README.md`), KID and FID against NumPy
//! implementations of the published formulas (`fixtures/eval/scores.json`), and the `eval`
//! command end to end.

#[path = "eval/formula_inception.rs"]
mod formula_inception;
#[path = "eval/torch_file.rs"]
mod torch_file;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use ugatit_io::image_file::{read_rgb, DEFAULT_MAX_PIXELS};
use ugatit_model::Cpu;
use ugatit_train::eval::{
    fid, kid, kid_on_subsets, mmd2_unbiased, Features, FidInception, KidOptions,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

/// The official-format light 128 / ch 8 / 3 res checkpoint of the storage crate's fixtures.
fn official_light() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-store/tests/fixtures/light_128_ch8_r3/official.pt")
}

/// Runs `ugatit-train` with `args`, asserts it succeeded (showing its stderr if not) and
/// returns its stdout.
fn train_cli_ok(args: impl FnOnce(&mut Command) -> &mut Command) -> Vec<u8> {
    let mut cmd = Command::cargo_bin("ugatit-train").unwrap();
    let out = args(&mut cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The formula-weight Inception as a `torch.save` file and the test images beside it: made once
/// per version of the fixtures (about 2 s and 96 MB) under target/, shared by the tests. Only
/// the images need Python (scikit-image's photos); the features to match are committed.
fn inception_reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let images = fixtures().join("make_inception_images.py");
        let keys = fixtures().join("inception_keys.json");
        let mut h = DefaultHasher::new();
        for file in [&images, &keys] {
            std::fs::read(file).unwrap().hash(&mut h);
        }
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(format!("eval-inception-{:016x}", h.finish()));
        if dir.join("inception.pth").is_file() {
            return dir;
        }
        let staging = tempfile::tempdir_in(base).unwrap();
        let out = Command::new("python3")
            .arg(&images)
            .arg(staging.path())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{} failed (scripts/test.sh installs scikit-image and Pillow):\n{}",
            images.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        formula_inception::write(&json(&keys), &staging.path().join("inception.pth"));
        let _ = std::fs::rename(staging.keep(), &dir);
        dir
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn inception_features_match_pytorch_fid() {
    let dir = inception_reference();
    let device = Default::default();
    let net = FidInception::<Cpu>::load(&dir.join("inception.pth"), &device).unwrap();
    let reference = json(&fixtures().join("inception_features.json"));
    let mut worst: f32 = 0.0;
    for item in reference["images"].as_array().unwrap() {
        let file = item["file"].as_str().unwrap();
        let image = read_rgb(&dir.join(file), DEFAULT_MAX_PIXELS).unwrap();
        let expect = floats(&item["features"]);
        let begun = Instant::now();
        let ours = net.features(std::slice::from_ref(&image), 1);
        eprintln!(
            "{file} ({}x{}): {:.2} s",
            image.width(),
            image.height(),
            begun.elapsed().as_secs_f64()
        );
        assert_eq!(ours.len(), 1);
        let scale = expect.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = ours
            .row(0)
            .iter()
            .zip(&expect)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{file}: max |ours - pytorch-fid| = {diff:e}, feature scale {scale}");
        worst = worst.max(diff / scale);
        assert!(diff <= 1e-4 * scale, "{file}: {diff} against scale {scale}");
    }
    eprintln!("worst relative difference {worst:e}");
}

#[test]
fn a_batch_gives_each_images_own_features() {
    let dir = inception_reference();
    let net = FidInception::<Cpu>::load(&dir.join("inception.pth"), &Default::default()).unwrap();
    let a = read_rgb(&dir.join("chelsea.png"), DEFAULT_MAX_PIXELS).unwrap();
    let b = image::imageops::flip_horizontal(&a);
    let together = net.features(&[a.clone(), b.clone()], 2);
    let alone = [net.features(&[a], 1), net.features(&[b], 1)];
    for (i, one) in alone.iter().enumerate() {
        let scale = one.row(0).iter().fold(0f32, |m, v| m.max(v.abs()));
        for (x, y) in together.row(i).iter().zip(one.row(0)) {
            assert!((x - y).abs() <= 1e-5 * scale, "image {i}: {x} vs {y}");
        }
    }
}

#[test]
fn weights_files_that_are_not_pytorch_fids_are_refused_naming_the_file() {
    let device = Default::default();
    let official = official_light();
    let e = FidInception::<Cpu>::load(&official, &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("official.pt") && e.contains("Conv2d_1a_3x3.conv.weight is missing"),
        "{e}"
    );
    let e = FidInception::<Cpu>::load(&fixtures().join("scores.json"), &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scores.json") && e.contains("cannot read"),
        "{e}"
    );
    let e = FidInception::<Cpu>::load(Path::new("no/such.pth"), &device)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no/such.pth") && e.contains("pt_inception-2015-12-05"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// The feature sets of one case of `scores.json`.
fn case(name: &str) -> (Value, Features, Features) {
    let all = json(&fixtures().join("scores.json"));
    let c = all[name].clone();
    let rows = |v: &Value| -> Vec<Vec<f32>> { v.as_array().unwrap().iter().map(floats).collect() };
    let (x, y) = (rows(&c["x"]), rows(&c["y"]));
    let x = Features::from_rows(x[0].len(), &x).unwrap();
    let y = Features::from_rows(y[0].len(), &y).unwrap();
    (c, x, y)
}

fn close(ours: f64, theirs: f64, rel: f64) -> bool {
    (ours - theirs).abs() <= rel * theirs.abs()
}

#[test]
fn kid_matches_numpy_on_the_same_subsets() {
    for name in ["wide", "tall"] {
        let (c, x, y) = case(name);
        let subsets: Vec<(Vec<usize>, Vec<usize>)> = c["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let idx = |v: &Value| -> Vec<usize> {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i.as_u64().unwrap() as usize)
                        .collect()
                };
                (idx(&pair[0]), idx(&pair[1]))
            })
            .collect();
        for ((ix, iy), expect) in subsets.iter().zip(c["kid_per_subset"].as_array().unwrap()) {
            let one = kid_on_subsets(&x, &y, &[(ix.clone(), iy.clone())]).unwrap();
            let expect = expect.as_f64().unwrap();
            assert!(
                close(one.mean, expect, 1e-9),
                "{name}: {} vs {expect}",
                one.mean
            );
        }
        let k = kid_on_subsets(&x, &y, &subsets).unwrap();
        let (mean, std) = (
            c["kid_mean"].as_f64().unwrap(),
            c["kid_std"].as_f64().unwrap(),
        );
        assert!(
            close(k.mean, mean, 1e-9),
            "{name}: mean {} vs {mean}",
            k.mean
        );
        assert!(close(k.std, std, 1e-9), "{name}: std {} vs {std}", k.std);
        let all = c["mmd2_all"].as_f64().unwrap();
        let ours = mmd2_unbiased(&x, &y).unwrap();
        assert!(close(ours, all, 1e-9), "{name}: {ours} vs {all}");
    }
}

#[test]
fn fid_matches_numpy_and_pytorch_fid() {
    for name in ["wide", "tall"] {
        let (c, x, y) = case(name);
        let ours = fid(&x, &y).unwrap();
        let numpy = c["fid"].as_f64().unwrap();
        let pytorch_fid = c["fid_pytorch_fid"].as_f64().unwrap();
        eprintln!("{name}: ours {ours}, numpy {numpy}, pytorch-fid {pytorch_fid}");
        assert!(close(ours, numpy, 1e-6), "{name}: {ours} vs {numpy}");
        assert!(
            close(ours, pytorch_fid, 1e-6),
            "{name}: {ours} vs {pytorch_fid}"
        );
        assert!(fid(&x, &x).unwrap().abs() < 1e-9 * numpy);
    }
}

#[test]
fn kid_subsets_are_seeded_and_sized_as_the_common_implementations() {
    let (_, x, y) = case("tall");
    let options = KidOptions {
        subsets: 20,
        max_subset_size: 1000,
        seed: 3,
    };
    let a = kid(&x, &y, &options).unwrap();
    assert_eq!(a, kid(&x, &y, &options).unwrap());
    assert_eq!((a.subsets, a.subset_size), (20, 80), "min(n_x, n_y, 1000)");
    let b = kid(&x, &y, &KidOptions { seed: 4, ..options }).unwrap();
    assert_ne!(a.mean, b.mean);
    // Subsets of both whole (equal-size) sets all give the whole sets' estimate.
    let y80 = y.head(80);
    let x80 = x.head(80);
    let whole = kid(&x80, &y80, &options).unwrap();
    let all = mmd2_unbiased(&x80, &y80).unwrap();
    assert!(close(whole.mean, all, 1e-12) && whole.std < 1e-12 * all.abs());
    let e = kid(&x.head(1), &y, &options).unwrap_err().to_string();
    assert!(e.contains("at least 2"), "{e}");
}

#[test]
fn eval_reports_kid_fid_and_the_l1_losses() {
    let reference = inception_reference();
    let data = tempfile::tempdir().unwrap();
    ugatit_train::toy_data::write(data.path(), 32, 5).unwrap();
    let model = official_light();
    let run = |extra: &[&str]| {
        let out = train_cli_ok(|c| {
            c.args([
                "eval",
                "--direction",
                "a2b",
                "--limit",
                "3",
                "--kid-subsets",
                "5",
                "--json",
            ])
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(data.path())
            .args(extra)
        });
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    let features = reference.join("inception.pth");
    let report = run(&["--features", features.to_str().unwrap()]);
    assert_eq!(report["direction"], "a2b");
    assert_eq!(
        (
            report["source_images"].as_u64(),
            report["target_images"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert!(report["source"].as_str().unwrap().ends_with("testA"));
    let kid = &report["scores"]["kid_x100"];
    assert_eq!(
        (kid["subsets"].as_u64(), kid["subset_size"].as_u64()),
        (Some(5), Some(3))
    );
    assert!(kid["mean"].as_f64().unwrap().is_finite());
    assert!(report["scores"]["fid"].as_f64().unwrap() > 0.0);
    let cycle = report["cycle_l1"].as_f64().unwrap();
    let identity = report["identity_l1"].as_f64().unwrap();
    assert!(cycle > 0.0 && cycle < 2.0 && identity > 0.0 && identity < 2.0);

    // Without the feature network: the same L1 losses, no scores.
    let plain = run(&[]);
    assert!(plain["scores"].is_null());
    assert_eq!(plain["cycle_l1"], report["cycle_l1"]);
    assert_eq!(plain["identity_l1"], report["identity_l1"]);
}

#[test]
fn eval_names_a_missing_test_folder() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("testA")).unwrap();
    let model = official_light();
    let out = Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(["eval", "--direction", "a2b", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("testA") && err.contains("holds no images"),
        "{err}"
    );
}

#[test]
fn training_logs_kid_and_fid_every_eval_every_steps() {
    let reference = inception_reference();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ugatit_train::toy_data::write(&data, 64, 2).unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nimg_size = 64\nch = 8\nn_res = 2\nlight = true\nn_dis_global = 5\nn_dis_local = 3\n\
             [train]\niterations = 4\n[data]\nroot = {:?}\n[checkpoint]\nevery = 4\n\
             [log]\nevery = 1\nsample_every = 0\n\
             [eval]\nevery = 2\nfeatures = {:?}\nimages = 3\nkid_subsets = 5\n",
            data,
            reference.join("inception.pth")
        ),
    )
    .unwrap();
    let run = dir.path().join("run");
    train_cli_ok(|c| {
        c.args(["train", "--config"])
            .arg(&config)
            .arg("--run-dir")
            .arg(&run)
    });
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let evals: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("kid_a2b").is_some())
        .collect();
    assert_eq!(evals.len(), 2, "{metrics}");
    for (v, step) in evals.iter().zip([2, 4]) {
        assert_eq!(v["step"], step);
        for key in ["kid_a2b", "fid_a2b", "kid_b2a", "fid_b2a"] {
            assert!(v[key].as_f64().unwrap().is_finite(), "{key}: {v}");
        }
    }
    let tb = std::fs::read_dir(run.join("tb")).unwrap();
    let bytes: Vec<u8> = tb
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(bytes.windows(7).any(|w| w == b"fid_b2a"));
}

#[test]
fn an_exported_generator_has_no_cycle_but_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ugatit_train::toy_data::write(&data, 32, 7).unwrap();
    let model = official_light();
    let exported = dir.path().join("a2b.safetensors");
    ugatit_store::export::export_generator(
        &model,
        ugatit_model::Direction::A2B,
        &exported,
        ugatit_store::export::ExportFormat::Safetensors,
        ugatit_store::export::StoreDtype::F32,
    )
    .unwrap();
    let eval = |model: &Path| {
        let out = train_cli_ok(|c| {
            c.args([
                "eval",
                "--direction",
                "a2b",
                "--limit",
                "2",
                "--json",
                "--model",
            ])
            .arg(model)
            .arg("--data")
            .arg(&data)
        });
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    let (whole, one) = (eval(&model), eval(&exported));
    assert!(whole["cycle_l1"].as_f64().is_some());
    assert!(one["cycle_l1"].is_null());
    assert!(one["notes"][0]
        .as_str()
        .unwrap()
        .contains("holds only one generator"));
    assert_eq!(one["identity_l1"], whole["identity_l1"]);
}
