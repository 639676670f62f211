//! A crash at any point of a checkpoint write leaves the previous checkpoint in use: every
//! on-disk state the writer passes through is reproduced from a real checkpoint, and a resume
//! from it continues exactly as the uninterrupted run.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ugatit_store::checkpoint::RunDir;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ugatit-store/tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

fn cli(args: &[&str], run: &Path) {
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(args)
        .arg("--run-dir")
        .arg(run)
        .args(["--device", "cpu"])
        .assert()
        .success();
}

#[test]
fn every_crash_point_of_a_checkpoint_write_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for (d, src) in [("trainA", "testA/a.png"), ("trainB", "testB/b.png")] {
        std::fs::create_dir_all(data.join(d)).unwrap();
        std::fs::copy(
            fixtures().join("full_96_ch4_r2/data").join(src),
            data.join(d).join("0.png"),
        )
        .unwrap();
    }
    let cfg = tmp.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\nimg_size = 32\nch = 2\nn_res = 1\nn_dis_global = 4\nn_dis_local = 3\n\
             [train]\niterations = 6\n[checkpoint]\nevery = 2\nkeep = 10\n[log]\nsample_every = 0\n\
             [data]\nroot = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let whole = tmp.path().join("whole");
    cli(&["train", "--config", cfg.to_str().unwrap()], &whole);
    let complete = whole.join("checkpoints/step-00000004");
    let files = [
        "nets.safetensors",
        "optim_g.bin",
        "optim_d.bin",
        "trainer.json",
        "manifest.json",
    ];

    // The writer's states, in order: staging folder created, then each file partly and fully
    // written (the manifest last), then the rename. Before the rename nothing is visible;
    // after it, damage to any file is caught by the manifest.
    // (what, each file with the fraction of it on disk, whether the folder was renamed)
    type State<'a> = (String, Vec<(&'a str, f64)>, bool);
    let mut states: Vec<State> = Vec::new();
    states.push(("empty staging folder".into(), vec![], false));
    for i in 0..files.len() {
        let mut done: Vec<(&str, f64)> = files[..i].iter().map(|f| (*f, 1.0)).collect();
        done.push((files[i], 0.5));
        states.push((format!("staging, {} half written", files[i]), done, false));
    }
    for f in &files[..4] {
        let written: Vec<(&str, f64)> = files
            .iter()
            .map(|g| (*g, if g == f { 0.9 } else { 1.0 }))
            .collect();
        states.push((format!("renamed, {f} damaged"), written, true));
    }

    for (what, written, renamed) in &states {
        let run = tmp.path().join("crash");
        let _ = std::fs::remove_dir_all(&run);
        copy_dir(&whole, &run);
        for s in ["step-00000004", "step-00000006"] {
            std::fs::remove_dir_all(run.join("checkpoints").join(s)).unwrap();
        }
        let name = if *renamed {
            "step-00000004"
        } else {
            ".step-00000004.partial"
        };
        let dir = run.join("checkpoints").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, fraction) in written {
            let bytes = std::fs::read(complete.join(f)).unwrap();
            let n = (bytes.len() as f64 * fraction) as usize;
            std::fs::write(dir.join(f), &bytes[..n]).unwrap();
        }
        let (found, _) = RunDir::new(&run).latest_verified().unwrap();
        assert_eq!(found.map(|c| c.step), Some(2), "{what}");
    }

    // From the last state, resuming redoes steps 3 to 6 exactly as the uninterrupted run did.
    cli(&["resume"], &tmp.path().join("crash"));
    let a = std::fs::read(whole.join("checkpoints/step-00000006/nets.safetensors")).unwrap();
    let b = std::fs::read(
        tmp.path()
            .join("crash/checkpoints/step-00000006/nets.safetensors"),
    )
    .unwrap();
    assert!(a == b, "resumed weights differ");
}
