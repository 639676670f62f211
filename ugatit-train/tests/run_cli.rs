//! The `ugatit-train` binary end to end on tiny models, on the CPU, or on the device
//! `UGATIT_TEST_DEVICE` names (the test command runs the resume and `--init` cases on wgpu).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ugatit_store::{read_tensors, Contents};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ugatit-store/tests/fixtures")
}

/// A data folder with two images a domain (from the model fixtures), plus `extra` files.
fn data_dir(root: &Path, extra: &[(&str, &[u8])]) -> PathBuf {
    let data = root.join("data");
    for d in ["trainA", "trainB", "testA", "testB"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    let f = fixtures();
    for (i, case) in ["full_96_ch4_r2", "light_128_ch8_r3"].iter().enumerate() {
        for (src, dst) in [("testA/a.png", "trainA"), ("testB/b.png", "trainB")] {
            let from = f.join(case).join("data").join(src);
            std::fs::copy(&from, data.join(dst).join(format!("{i}.png"))).unwrap();
            std::fs::copy(
                &from,
                data.join(dst.replace("train", "test"))
                    .join(format!("{i}.png")),
            )
            .unwrap();
        }
    }
    for (name, bytes) in extra {
        std::fs::write(data.join(name), bytes).unwrap();
    }
    data
}

const TINY: &str = r#"
[model]
img_size = 32
ch = 2
n_res = 1
n_dis_global = 4
n_dis_local = 3
[train]
iterations = 6
seed = 3
[checkpoint]
every = 2
keep = 10
[log]
every = 1
sample_every = 3
"#;

fn config(dir: &Path, data: &Path, extra: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(
        &path,
        format!(
            "{TINY}{extra}\n[data]\nroot = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// A temporary folder with the data and the tiny config.
struct Tiny {
    tmp: tempfile::TempDir,
    cfg: PathBuf,
}

impl Tiny {
    fn new(extra_files: &[(&str, &[u8])]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = data_dir(tmp.path(), extra_files);
        let cfg = config(tmp.path(), &data, "");
        Self { tmp, cfg }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `train --config <tiny> ARGS --run-dir RUN`.
    fn train(&self, args: &[&str], run: &Path) -> assert_cmd::assert::Assert {
        let mut all = vec!["train", "--config", self.cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        train(&all, run)
    }

    /// The stderr of a `train` that must fail.
    fn train_error(&self, args: &[&str]) -> String {
        let out = self.train(args, &self.path("run")).failure();
        String::from_utf8_lossy(&out.get_output().stderr).to_string()
    }
}

fn train(args: &[&str], run: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(args)
        .arg("--run-dir")
        .arg(run)
        .args(["--device", &ugatit_io::device::test_device().to_string()])
        .assert()
}

fn nets(run: &Path) -> ugatit_model::StateDict {
    match read_tensors(run).unwrap().contents {
        Contents::Model(sd) => sd,
        Contents::Generator(_) => panic!("not a checkpoint"),
    }
}

fn latest(run: &Path) -> PathBuf {
    ugatit_store::checkpoint::RunDir::new(run)
        .latest()
        .unwrap()
        .unwrap()
        .dir
}

#[test]
fn resume_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), &[]);
    let cfg = config(tmp.path(), &data, "");
    let cfg = cfg.to_str().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    train(&["train", "--config", cfg], &whole).success();
    train(&["train", "--config", cfg, "--stop-after", "3"], &split).success();
    // --stop-after is not saved: resume runs to train.iterations.
    train(&["resume"], &split).success();

    let (a, b) = (nets(&whole), nets(&split));
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(v, &b[k], "{k} differs after resume");
    }
    for f in [
        "nets.safetensors",
        "optim_g.bin",
        "optim_d.bin",
        "trainer.json",
        "manifest.json",
    ] {
        let (x, y) = (latest(&whole).join(f), latest(&split).join(f));
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{f} differs"
        );
    }
    let steps = |run: &Path| -> Vec<u64> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(steps(&split), [1, 2, 3, 4, 5, 6]);
    // Extending the run recomputes the schedule for the new total: H = 8 / 2 = 4, so step 7
    // runs at lr * (1 - 3/4).
    train(&["resume", "--set", "train.iterations=8"], &split).success();
    let metrics = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(metrics.lines().nth(6).unwrap()).unwrap();
    assert_eq!(line["step"], 7);
    assert!(
        (line["lr"].as_f64().unwrap() - 0.25e-4).abs() < 1e-12,
        "{line}"
    );
    assert!(std::fs::read_to_string(split.join("config.toml"))
        .unwrap()
        .contains("iterations = 8"));
    // A second `train` into the same folder is refused.
    let e = train(&["train", "--config", cfg], &split).failure();
    assert!(String::from_utf8_lossy(&e.get_output().stderr).contains("use `ugatit-train resume"));
}

/// What `resume_is_bit_exact` checks of the arithmetic, short enough for a GPU backend on
/// lavapipe (the test command runs it on wgpu): 4 steps straight against 2 and a resume, every
/// byte of the last checkpoint equal.
#[test]
fn a_resumed_run_ends_where_a_straight_one_does() {
    let tiny = Tiny::new(&[]);
    let (whole, split) = (tiny.path("whole"), tiny.path("split"));
    let four = ["--set", "train.iterations=4"];
    tiny.train(&four, &whole).success();
    tiny.train(&[four[0], four[1], "--stop-after", "2"], &split)
        .success();
    train(&["resume"], &split).success();
    assert_eq!(latest(&whole).file_name(), latest(&split).file_name());
    assert_same_checkpoint(&whole, &split);
}

#[test]
fn train_from_an_official_checkpoint_follows_the_reference_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let case = fixtures().join("full_96_ch4_r2");
    let cfg = tmp.path().join("parity.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\nimg_size = 96\nch = 4\nn_res = 2\n[train]\niterations = 4\naugment = false\n\
             [data]\nroot = {:?}\n[log]\nevery = 1\nsample_every = 0\n",
            case.join("data").display().to_string()
        ),
    )
    .unwrap();
    let run = tmp.path().join("run");
    // Two of the four steps on a GPU backend (lavapipe is a CPU): the same schedule, stopped.
    let steps = if ugatit_io::device::test_device().is_gpu() {
        2
    } else {
        4
    };
    train(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--init",
            case.join("official.pt").to_str().unwrap(),
            "--stop-after",
            &steps.to_string(),
        ],
        &run,
    )
    .success();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap();
    let ours: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (want, got) in info["losses"].as_array().unwrap().iter().zip(&ours) {
        assert_eq!(want["step"], got["step"]);
        for k in ["d_loss", "g_loss"] {
            let (w, g) = (want[k].as_f64().unwrap(), got[k].as_f64().unwrap());
            assert!(
                ((g - w) / w).abs() <= 1e-3,
                "step {}: {k} {g} vs {w}",
                want["step"]
            );
        }
    }
    assert_eq!(ours.len(), steps);
}

#[test]
fn tensorboard_reads_the_event_files() {
    let t = Tiny::new(&[]);
    let run = t.path("run");
    t.train(&[], &run).success();
    let out = std::process::Command::new("python3")
        .args(["-c", TENSORBOARD_CHECK])
        .arg(run.join("tb"))
        .output()
        .expect("python3 with the tensorboard package (scripts/test.sh installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
}

/// Reads a run's events with TensorBoard's own reader: scalars at every step, a sample grid.
const TENSORBOARD_CHECK: &str = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"images": 0, "scalars": 0})
acc.Reload()
tags = acc.Tags()
steps = [e.step for e in acc.Scalars("g_loss")]
assert steps == [1, 2, 3, 4, 5, 6], steps
assert "d_loss" in tags["scalars"] and "lr" in tags["scalars"], tags
img = acc.Images("samples/test_a2b")[0]
assert (img.width, img.height) == (64, 224), (img.width, img.height)
assert img.encoded_image_string[:4] == b"\x89PNG"
"#;

#[test]
fn undecodable_images_are_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let jpeg = std::fs::read(fixtures().join("full_96_ch4_r2/data/testA/a.png")).unwrap();
    let data = data_dir(
        tmp.path(),
        &[
            ("trainA/empty.png", b""),
            ("trainA/notes.png", b"this is text, not an image"),
            (
                "trainB/cut.jpg",
                &[0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F'],
            ),
            ("trainB/cut2.png", &jpeg[..jpeg.len() / 3]),
        ],
    );
    let cfg = config(tmp.path(), &data, "");
    let run = tmp.path().join("run");
    let out = train(&["train", "--config", cfg.to_str().unwrap()], &run).success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for name in ["empty.png", "notes.png", "cut.jpg", "cut2.png"] {
        assert_eq!(
            stderr.matches(name).count(),
            1,
            "one warning for {name}: {stderr}"
        );
    }
    let last = || -> serde_json::Value {
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    assert_eq!(last()["skipped_images"], 4.0);
    // A resumed run knows them: no new warnings, the same count.
    let out = train(&["resume", "--set", "train.iterations=12"], &run).success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!stderr.contains("skipped ("), "{stderr}");
    assert_eq!(last()["step"], 12);
    assert_eq!(last()["skipped_images"], 4.0);
}

#[test]
fn a_folder_without_usable_images_stops_before_training() {
    let t = Tiny::new(&[]);
    for f in std::fs::read_dir(t.path("data/trainB")).unwrap() {
        std::fs::write(f.unwrap().path(), b"broken").unwrap();
    }
    let e = t.train_error(&[]);
    assert!(
        e.contains("trainB: no usable image: all 2 failed to decode"),
        "{e}"
    );
}

#[test]
fn config_mistakes_are_named_before_any_work() {
    let t = Tiny::new(&[]);
    let e = t.train_error(&["--set", "train.iteratons=9"]);
    assert!(e.contains("unknown key train.iteratons"), "{e}");
    assert!(!t.path("run").exists(), "nothing was written");
    let bad = t.path("bad.toml");
    std::fs::write(&bad, "[train]\nlr = 0\n").unwrap();
    let out = train(
        &["train", "--config", bad.to_str().unwrap()],
        &t.path("run"),
    )
    .failure();
    let e = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(e.contains("train.lr = 0 is out of range"), "{e}");
    // A documented key whose default is none, once refused as unknown: the missing file named.
    let e = t.train_error(&[
        "--set",
        "eval.every=1",
        "--set",
        "eval.features=no-such-folder/inception.pth",
    ]);
    assert!(e.contains("no-such-folder/inception.pth"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    let e = t.train_error(&["--set", "log.tensorboard=maybe"]);
    assert!(e.contains("--set log.tensorboard=maybe: "), "{e}");
}

#[test]
fn a_diverging_loss_stops_the_run_naming_the_term() {
    let e = Tiny::new(&[]).train_error(&["--set", "train.cam_weight=1e39"]);
    assert!(e.contains("step 1: g_loss is inf; stopping"), "{e}");
}

/// Losses stay on the device between log lines; they are still read, and checked, before any
/// checkpoint is written, and the first diverged step is the one named.
#[test]
fn a_diverging_loss_between_log_lines_is_named_before_a_checkpoint_is_written() {
    let e = Tiny::new(&[]).train_error(&[
        "--set",
        "train.cam_weight=1e39",
        "--set",
        "log.every=5",
        "--set",
        "checkpoint.every=3",
    ]);
    assert!(e.contains("step 1: g_loss is inf; stopping"), "{e}");
    assert!(e.contains("the last good checkpoint is step none"), "{e}");
}

#[test]
fn sigterm_finishes_the_step_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path(), &[]);
    let cfg = config(tmp.path(), &data, "");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("iterations = 6", "iterations = 100000"),
    )
    .unwrap();
    let run = tmp.path().join("run");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ugatit-train"))
        .args([
            "train",
            "--device",
            "cpu",
            "--config",
            cfg.to_str().unwrap(),
            "--run-dir",
        ])
        .arg(&run)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = run.join("metrics.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.lines().count() < 3) {
        assert!(start.elapsed().as_secs() < 120, "no progress");
        std::thread::yield_now();
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let logged = std::fs::read_to_string(&metrics).unwrap().lines().count() as u64;
    let ckpt = ugatit_store::checkpoint::RunDir::new(&run)
        .latest()
        .unwrap()
        .unwrap();
    assert_eq!(ckpt.step, logged, "the last step logged is checkpointed");
    ckpt.verify().unwrap();
}

#[test]
fn export_writes_a_generator_that_knows_its_step_and_direction() {
    let t = Tiny::new(&[]);
    let run = t.path("run");
    t.train(&["--stop-after", "4"], &run).success();
    let out = t.path("g.safetensors");
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(["export", "--step", "2", "--direction", "b2a", "--run-dir"])
        .arg(&run)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let loaded = read_tensors(&out).unwrap();
    assert_eq!(loaded.step, Some(2));
    assert_eq!(loaded.direction, Some(ugatit_model::Direction::B2A));
}

#[test]
fn init_weights_that_do_not_fit_the_config_name_the_first_differing_tensor() {
    let official = fixtures().join("full_96_ch4_r2/official.pt");
    let e = Tiny::new(&[]).train_error(&["--init", official.to_str().unwrap()]);
    assert!(
        e.contains("the weights do not fit the config's [model]"),
        "{e}"
    );
    let first = "tensor genA2B.DownBlock.1.weight has shape [4, 3, 7, 7], but this architecture needs [2, 3, 7, 7]";
    assert!(e.contains(first), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// The bytes of the newest checkpoint's files of two runs are the same.
fn assert_same_checkpoint(a: &Path, b: &Path) {
    for f in [
        "nets.safetensors",
        "optim_g.bin",
        "optim_d.bin",
        "trainer.json",
        "manifest.json",
    ] {
        let (x, y) = (latest(a).join(f), latest(b).join(f));
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{f} differs"
        );
    }
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_from_step_1() {
    let t = Tiny::new(&[]);
    let whole = t.path("whole");
    t.train(&[], &whole).success();

    // Killed during its first checkpoint: the folder holds its config, the logs of step 1 and
    // a half-written (staged) checkpoint.
    let cut = t.path("cut");
    t.train(&["--stop-after", "1"], &cut).success();
    std::fs::rename(
        cut.join("checkpoints/step-00000001"),
        cut.join("checkpoints/.step-00000002.partial"),
    )
    .unwrap();
    let out = train(&["resume"], &cut).success();
    assert!(
        stderr(&out).contains("no complete checkpoint yet; starting the run at step 1"),
        "{}",
        stderr(&out)
    );
    assert_same_checkpoint(&whole, &cut);
    let steps: Vec<u64> = std::fs::read_to_string(cut.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6]);

    // The one command of a preemptible machine's every boot: the first starts the run from
    // --config, the later ones continue it with its own config.
    let cfg = t.cfg.to_str().unwrap();
    let booted = t.path("booted");
    train(&["resume", "--config", cfg, "--stop-after", "3"], &booted).success();
    let out = train(&["resume", "--config", cfg], &booted).success();
    assert!(
        stderr(&out).contains("exists: it continues with its own config.toml"),
        "{}",
        stderr(&out)
    );
    assert_same_checkpoint(&whole, &booted);
}

#[test]
fn a_data_set_moved_away_is_named_on_resume_and_set_paths_follow_the_current_folder() {
    let t = Tiny::new(&[]);
    let run = t.path("run");
    t.train(&["--stop-after", "2"], &run).success();
    // A new machine, where the data set is elsewhere.
    let first = t.path("data").canonicalize().unwrap();
    std::fs::rename(t.path("data"), t.path("moved")).unwrap();
    let e = stderr(&train(&["resume"], &run).failure());
    assert!(
        e.contains(&format!(
            "data.root {} does not exist on this machine",
            first.display()
        )) && e.contains("--set data.root=PATH"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    // A relative --set path is relative to the current folder, not to the run folder.
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .current_dir(t.tmp.path())
        .args([
            "resume",
            "--device",
            "cpu",
            "--set",
            "data.root=moved",
            "--run-dir",
        ])
        .arg(&run)
        .assert()
        .success();
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let moved = std::path::absolute(t.path("moved")).unwrap();
    assert!(
        saved.contains(&format!("root = {:?}", moved.display().to_string())),
        "{saved}"
    );
    assert_eq!(latest(&run).file_name().unwrap(), "step-00000006");
}

#[test]
fn test_sample_grids_left_out_are_named_once() {
    let t = Tiny::new(&[]);
    std::fs::remove_dir_all(t.path("data/testB")).unwrap();
    for f in std::fs::read_dir(t.path("data/testA")).unwrap() {
        std::fs::write(f.unwrap().path(), b"not an image").unwrap();
    }
    let run = t.path("run");
    // sample_every = 3 of 6 steps: grids at steps 3 and 6.
    let e = stderr(&t.train(&[], &run).success());
    assert_eq!(e.matches("no test sample grids").count(), 1, "{e}");
    assert!(
        e.contains("none of the 2 images in") && e.contains("testB does not exist"),
        "{e}"
    );
    let written: Vec<String> = std::fs::read_dir(run.join("samples"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(written.len(), 4, "train grids only: {written:?}");
    assert!(
        written.iter().all(|f| f.starts_with("train_")),
        "{written:?}"
    );
}
