//! Event files as the real `tensorboard` package reads them (`pip install tensorboard`), and
//! their bucket copy: a run mirrored to a real S3-compatible server (`moto_server`, from
//! `pip install "moto[server]"`) over many upload intervals sends each event byte once, and
//! TensorBoard reads the bucket's folder of rolled files back with every scalar in step order.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{moto, Server};

use burn::backend::Autodiff;
use ugatit_model::Cpu;
use ugatit_store::bucket::RemoteRun;
use ugatit_train::config::Config;
use ugatit_train::log::{EventWriter, RollSignal};
use ugatit_train::mirror::Mirror;
use ugatit_train::run::{self, Start};

/// Each tag TensorBoard's `EventAccumulator` finds in `dir`, with its events' steps and values
/// in the order it yields them.
fn tensorboard_reads(dir: &Path) -> BTreeMap<String, Vec<(i64, Option<f64>)>> {
    const SCRIPT: &str = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
for tag in tags["scalars"]:
    print(tag, " ".join(f"{e.step}:{e.value!r}" for e in acc.Scalars(tag)))
for tag in tags["images"]:
    print(tag, " ".join(f"{e.step}:-" for e in acc.Images(tag)))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(dir)
        .output()
        .expect("python3 with the tensorboard package (pip install tensorboard)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (tag, events) = line.split_once(' ').unwrap_or((line, ""));
            let events = events
                .split_whitespace()
                .map(|e| {
                    let (step, value) = e.split_once(':').unwrap();
                    (step.parse().unwrap(), value.parse().ok())
                })
                .collect();
            (tag.to_string(), events)
        })
        .collect()
}

#[test]
fn tensorboard_reads_rolled_files_and_drops_what_a_resumed_run_writes_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tb");
    let rolls = RollSignal::default();
    // A run that crashed after logging step 5, a file per step...
    let mut w = EventWriter::create(&dir, Some(rolls.clone())).unwrap();
    for step in 1..=5 {
        w.scalar("g_loss", step, step as f32).unwrap();
        rolls.request();
        w.flush().unwrap();
    }
    drop(w);
    // ...resumed from its checkpoint of step 3 (within the same second: the names still sort).
    let mut w = EventWriter::create(&dir, Some(rolls.clone())).unwrap();
    for step in 4..=7 {
        w.scalar("g_loss", step, 10.0 + step as f32).unwrap();
        rolls.request();
        w.flush().unwrap();
    }
    drop(w);
    assert!(std::fs::read_dir(&dir).unwrap().count() >= 9);
    let read = tensorboard_reads(&dir);
    let expected: Vec<(i64, Option<f64>)> = [1.0, 2.0, 3.0, 14.0, 15.0, 16.0, 17.0]
        .into_iter()
        .zip(1..)
        .map(|(v, step)| (step, Some(v)))
        .collect();
    assert_eq!(read["g_loss"], expected);
}

/// moto_server with `bucket`, versioned: each upload of a key is kept as a version.
fn versioned_moto(bucket: &str) -> Server {
    let server = moto(bucket);
    server.ok(
        "PUT",
        &format!("/{bucket}?versioning"),
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    );
    server
}

/// How many versions (uploads) each key under `prefix` of `bucket` has.
fn versions(server: &Server, bucket: &str, prefix: &str) -> BTreeMap<String, usize> {
    let answer = server
        .request("GET", &format!("/{bucket}?versions&prefix={prefix}"), "")
        .unwrap();
    assert!(!answer.contains("<IsTruncated>true"), "{answer}");
    let mut count = BTreeMap::new();
    for version in answer.split("<Version>").skip(1) {
        let key = version
            .split_once("<Key>")
            .and_then(|(_, rest)| rest.split_once("</Key>"))
            .unwrap()
            .0;
        *count.entry(key.to_string()).or_insert(0) += 1;
    }
    count
}

fn local_sizes(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn a_mirrored_run_uploads_each_event_byte_once_and_tensorboard_reads_the_bucket_in_order() {
    let server = versioned_moto("runs");
    for (k, v) in [
        ("AWS_ENDPOINT_URL", server.endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ] {
        std::env::set_var(k, v);
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nimg_size = 32\nch = 2\nn_res = 1\nn_dis_global = 4\nn_dis_local = 3\n\
             [train]\niterations = 12\nseed = 4\n[checkpoint]\nevery = 6\nkeep = 2\n\
             [log]\nevery = 1\nsample_every = 4\n\
             [data]\nroot = {:?}\ntoy_if_missing = true\nworkers = 1\n",
            tmp.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut cfg = Config::load(&config, &[]).unwrap();
    let run_dir = tmp.path().join("cache");
    run::prepare_new(&run_dir, &mut cfg).unwrap();
    let url = "s3://runs/exp/tb";
    // An upload interval far shorter than a step: the writer starts a file nearly every step.
    let mirror = Mirror::start_every(
        RemoteRun::open(url).unwrap(),
        run_dir.clone(),
        cfg.checkpoint.keep,
        cfg.checkpoint.milestone_every,
        Duration::from_millis(2),
    );
    mirror.config();
    let done = run::run::<Autodiff<Cpu>>(
        &run_dir,
        &cfg,
        Start::New { init: None },
        None,
        Some(&mirror),
        &Default::default(),
    )
    .unwrap();
    mirror.finish();
    assert_eq!(done.step, 12);

    // Each event file in the bucket whole, uploaded once.
    let local = local_sizes(&run_dir.join("tb"));
    assert!(local.len() >= 4, "rolled only {} times", local.len() - 1);
    let remote = RemoteRun::open(url).unwrap();
    let listed: BTreeMap<String, u64> = remote
        .list("tb")
        .unwrap()
        .into_iter()
        .map(|(k, size)| (k.trim_start_matches("tb/").to_string(), size))
        .collect();
    assert_eq!(listed, local);
    assert_eq!(listed.values().sum::<u64>(), local.values().sum::<u64>());
    let versions = versions(&server, "runs", "exp/tb/tb/");
    assert_eq!(versions.len(), local.len(), "{versions:?}");
    assert!(
        versions.values().all(|&n| n == 1),
        "re-uploaded: {versions:?}"
    );

    // TensorBoard reads the bucket's copy: every scalar of metrics.jsonl, in step order.
    let copy = tmp.path().join("copy");
    for name in listed.keys() {
        remote
            .download_file(&format!("tb/{name}"), &copy.join(name))
            .unwrap();
    }
    let read = tensorboard_reads(&copy);
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(metrics.len(), 12);
    let tags: Vec<&String> = metrics[0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "step")
        .collect();
    assert!(tags.len() > 5, "{tags:?}");
    for tag in tags {
        let expected: Vec<(i64, Option<f64>)> = metrics
            .iter()
            .map(|m| {
                let value = m[tag.as_str()].as_f64().unwrap() as f32;
                (m["step"].as_i64().unwrap(), Some(f64::from(value)))
            })
            .collect();
        assert_eq!(read[tag.as_str()], expected, "{tag}");
    }
    for set in ["samples/train_a2b", "samples/test_b2a"] {
        let steps: Vec<i64> = read[set].iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, [4, 8, 12], "{set}");
    }
}
