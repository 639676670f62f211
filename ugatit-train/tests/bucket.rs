//! Runs in buckets, against a real S3-compatible server (`moto_server`, from
//! `pip install "moto[server]"`; scripts/test.sh installs it) started here on a free loopback
//! port, and against object_store's in-memory store for the upload logic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use assert_cmd::Command;
use common::{
    assert_same_checkpoint, export_args, moto, s3_env, stderr, tiny_config, train_cli,
    train_stop_and_resume_fresh, Server,
};
use ugatit_store::bucket::{cache_folder, RemoteRun};
use ugatit_store::checkpoint::RunDir;

fn config(dir: &Path) -> PathBuf {
    tiny_config(
        dir,
        "[train]\niterations = 6\nseed = 4\n[checkpoint]\nevery = 2\nkeep = 2\n\
         [log]\nevery = 1\nsample_every = 3\n",
    )
}

/// `ugatit-train ARGS` against `server`, caching in `cache`.
fn cli(server: &Server, cache: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    train_cli(&s3_env(server), cache, args)
}

#[test]
fn a_bucket_run_resumes_on_a_fresh_machine_bit_exactly() {
    let server = moto("runs");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let cfg = cfg.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let url = "s3://runs/exp/one";

    train_stop_and_resume_fresh(&s3_env(&server), &cache, cfg, url);
    let local = cache_folder(url, Some(&cache));

    let whole = tmp.path().join("whole");
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(["train", "--device", "cpu", "--config", cfg, "--run-dir"])
        .arg(&whole)
        .assert()
        .success();
    let ours = RunDir::new(&local).latest().unwrap().unwrap();
    let theirs = RunDir::new(&whole).latest().unwrap().unwrap();
    assert_eq!(ours.step, 6);
    for f in [
        "nets.safetensors",
        "optim_g.bin",
        "optim_d.bin",
        "trainer.json",
    ] {
        assert!(
            std::fs::read(ours.dir.join(f)).unwrap() == std::fs::read(theirs.dir.join(f)).unwrap(),
            "{f} differs"
        );
    }

    // The bucket holds the same newest checkpoint, retention applied, and the logs.
    for (k, v) in s3_env(&server) {
        std::env::set_var(k, v);
    }
    let remote = RemoteRun::open(url).unwrap();
    assert_eq!(remote.latest_step().unwrap(), Some(6));
    let listed: Vec<String> = remote
        .list("")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        listed.contains(&"checkpoints/step-00000006/nets.safetensors".to_string()),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|k| k.contains("step-00000002")),
        "pruned: {listed:?}"
    );
    assert!(
        listed.contains(&"metrics.jsonl".to_string())
            && listed.contains(&"config.toml".to_string())
    );

    // Any model path may be a bucket run: fetched into the cache, newest checkpoint.
    std::env::set_var("XDG_CACHE_HOME", tmp.path().join("xdg"));
    let g = ugatit_store::load_generator::<ugatit_model::Cpu>(
        Path::new(url),
        ugatit_model::Direction::B2A,
        &Default::default(),
    )
    .unwrap();
    assert_eq!((g.config.ch, g.step), (2, Some(6)));

    // A second `train` into the same URL is refused; a prefix without a run is named.
    let e = cli(
        &server,
        &cache,
        &["train", "--config", cfg, "--run-dir", url],
    )
    .failure();
    assert!(String::from_utf8_lossy(&e.get_output().stderr).contains("use `ugatit-train resume"));
    let e = cli(
        &server,
        &cache,
        &["resume", "--run-dir", "s3://runs/nothing/here"],
    )
    .failure();
    assert!(String::from_utf8_lossy(&e.get_output().stderr).contains("holds no run"));
    let e = cli(
        &server,
        &cache,
        &["resume", "--run-dir", "s3://no-such-bucket/x"],
    )
    .failure();
    let stderr = String::from_utf8_lossy(&e.get_output().stderr).to_string();
    assert!(
        stderr.contains("s3://no-such-bucket/x") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("the bucket does not exist"), "{stderr}");
}

#[test]
fn a_checkpoint_without_its_latest_marker_is_never_used() {
    // The upload order over an in-memory store: files first, `latest` last. A run killed
    // during an upload leaves `latest` on the previous checkpoint.
    let store = Arc::new(object_store::memory::InMemory::new());
    let remote = RemoteRun::with_store("memory://run", store, "run").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoints/step-00000002");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nets.safetensors"), b"two").unwrap();
    remote
        .put_bytes("config.toml", b"[model]\n".to_vec())
        .unwrap();
    remote
        .upload_checkpoint(
            &ugatit_store::checkpoint::Checkpoint { step: 2, dir },
            &|_| (),
        )
        .unwrap();
    // Step 4's files partly uploaded, marker not yet moved.
    remote
        .put_bytes("checkpoints/step-00000004/nets.safetensors", b"fo".to_vec())
        .unwrap();
    assert_eq!(remote.latest_step().unwrap(), Some(2));
    let cache = tmp.path().join("cache");
    let step = remote.download_latest(&cache).unwrap_or(0);
    assert_eq!(step, 2);
    assert_eq!(
        std::fs::read(cache.join("checkpoints/step-00000002/nets.safetensors")).unwrap(),
        b"two"
    );
    // Retention on the bucket's own listing: the newest, milestones and `latest` stay.
    for step in [4, 6] {
        let dir = tmp.path().join(format!("checkpoints/step-{step:08}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nets.safetensors"), b"later").unwrap();
        remote
            .upload_checkpoint(&ugatit_store::checkpoint::Checkpoint { step, dir }, &|_| ())
            .unwrap();
    }
    remote
        .put_bytes("latest", b"step-00000002".to_vec())
        .unwrap();
    remote.prune(1, 4).unwrap();
    let left: Vec<String> = remote
        .list("checkpoints")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let steps: Vec<&str> = left.iter().map(|k| &k[12..25]).collect();
    assert_eq!(steps, ["step-00000002", "step-00000004", "step-00000006"]);
    remote
        .put_bytes("latest", b"step-00000006".to_vec())
        .unwrap();
    remote.prune(1, 0).unwrap();
    let left: Vec<String> = remote
        .list("checkpoints")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, ["checkpoints/step-00000006/nets.safetensors"]);
}

#[test]
fn bucket_urls_are_checked() {
    let e = RemoteRun::open("s4://bucket/x").unwrap_err().to_string();
    assert!(e.contains("unsupported scheme s4://"), "{e}");
    let e = RemoteRun::open("not a url").unwrap_err().to_string();
    assert!(e.contains("not a URL"), "{e}");
    // gs:// and az:// configure from the environment. With none of their variables set (no
    // other test of this binary sets them), GCS opens (its credentials are looked up at first
    // use) and Azure, which needs an account name to build its URLs, is refused naming what to
    // set. (Both against real emulators: tests/emulators.rs.)
    let names: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| {
            k.starts_with("GOOGLE_") || k.starts_with("AZURE_") || k.starts_with("AZURITE_")
        })
        .collect();
    for k in names {
        std::env::remove_var(k);
    }
    let gs = RemoteRun::open("gs://bucket/runs/a").unwrap();
    assert_eq!(gs.url(), "gs://bucket/runs/a");
    let e = RemoteRun::open("az://container/runs/a")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("az://container/runs/a: cannot configure Azure Blob Storage")
            && e.contains("AZURE_STORAGE_ACCOUNT_NAME"),
        "{e}"
    );
    let cache = cache_folder("gs://bucket/runs/a", Some(Path::new("/c")));
    assert!(cache.starts_with("/c") && cache.to_string_lossy().contains("gs___bucket_runs_a-"));
    assert_ne!(
        cache_folder("s3://b/x_y", None),
        cache_folder("s3://b/x/y", None)
    );
}

#[test]
fn any_checkpoint_a_bucket_holds_exports_not_only_the_newest() {
    let server = moto("exports");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let cache = tmp.path().join("cache");
    let url = "s3://exports/run";
    cli(
        &server,
        &cache,
        &["train", "--config", cfg.to_str().unwrap(), "--run-dir", url],
    )
    .success();
    // keep = 2: the bucket holds steps 4 and 6; a fresh machine exports step 4.
    std::fs::remove_dir_all(&cache).unwrap();
    let out = tmp.path().join("g4.safetensors");
    let ok = cli(&server, &cache, &export_args(url, "4", "a2b", &out));
    let stdout = String::from_utf8_lossy(&ok.get_output().stdout).to_string();
    ok.success();
    assert!(stdout.contains("generator of step 4"), "{stdout}");
    let t = ugatit_store::read_tensors(&out).unwrap();
    assert_eq!(t.step, Some(4));
    // A step the bucket does not hold is named with the ones it does.
    let e = cli(&server, &cache, &export_args(url, "2", "a2b", &out)).failure();
    let stderr = String::from_utf8_lossy(&e.get_output().stderr).to_string();
    assert!(
        stderr.contains("holds no checkpoint of step 2 (it holds steps: 4, 6)"),
        "{stderr}"
    );
}

/// `prefix` of the server's `runs` bucket, configured in code (not through the process
/// environment, which tests running side by side would share).
fn s3_prefix(server: &Server, prefix: &str) -> RemoteRun {
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_bucket_name("runs")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_region("us-east-1")
        .build()
        .unwrap();
    RemoteRun::with_store(&format!("s3://runs/{prefix}"), Arc::new(store), prefix).unwrap()
}

fn whole_local_run(cfg: &Path, run: &Path) {
    Command::cargo_bin("ugatit-train")
        .unwrap()
        .args(["train", "--device", "cpu", "--config"])
        .arg(cfg)
        .arg("--run-dir")
        .arg(run)
        .assert()
        .success();
}

#[test]
fn data_and_checkpoints_in_buckets_resume_on_a_fresh_machine_with_one_command() {
    let server = moto("runs");
    let tmp = tempfile::tempdir().unwrap();
    let local_cfg = config(tmp.path());
    // The same images in the bucket, and an object that is no image of the data set.
    let data = s3_prefix(&server, "sets/tiny");
    for d in ["trainA", "trainB"] {
        for f in ["0.png", "1.png"] {
            let bytes = std::fs::read(tmp.path().join("data").join(d).join(f)).unwrap();
            data.put_bytes(&format!("{d}/{f}"), bytes).unwrap();
        }
    }
    data.put_bytes("notes.txt", b"not fetched".to_vec())
        .unwrap();
    let text = std::fs::read_to_string(&local_cfg).unwrap();
    let root_line = text.lines().find(|l| l.starts_with("root = ")).unwrap();
    let bucket_cfg = tmp.path().join("bucket.toml");
    std::fs::write(
        &bucket_cfg,
        text.replace(root_line, "root = \"s3://runs/sets/tiny\""),
    )
    .unwrap();

    let cache = tmp.path().join("cache");
    let url = "s3://runs/exp/data";
    let out = cli(
        &server,
        &cache,
        &[
            "train",
            "--config",
            bucket_cfg.to_str().unwrap(),
            "--run-dir",
            url,
            "--stop-after",
            "3",
        ],
    )
    .success();
    assert!(
        stderr(&out).contains("fetched 4 images"),
        "{}",
        stderr(&out)
    );
    // A fresh machine: one command fetches the run, then the data set, and continues.
    std::fs::remove_dir_all(&cache).unwrap();
    let out = cli(&server, &cache, &["resume", "--run-dir", url]).success();
    assert!(
        stderr(&out).contains("fetched 4 images"),
        "{}",
        stderr(&out)
    );
    let images = cache_folder("s3://runs/sets/tiny", Some(&cache));
    assert!(images.join("trainB/1.png").is_file());
    assert!(!images.join("notes.txt").exists());
    let whole = tmp.path().join("whole");
    whole_local_run(&local_cfg, &whole);
    assert_same_checkpoint(&cache_folder(url, Some(&cache)), &whole);
    // The run's config keeps the URL, and a machine that has the images fetches none again.
    let saved = std::fs::read_to_string(cache_folder(url, Some(&cache)).join("config.toml"));
    assert!(saved.unwrap().contains("root = \"s3://runs/sets/tiny\""));
    let out = cli(
        &server,
        &cache,
        &["resume", "--run-dir", url, "--set", "train.iterations=7"],
    )
    .success();
    let e = stderr(&out);
    assert!(
        e.contains("4 images, 4 in") && !e.contains("fetched 4"),
        "{e}"
    );
}

#[test]
fn a_bucket_run_without_a_checkpoint_starts_at_step_1_and_one_command_serves_every_boot() {
    let server = moto("runs");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let cfg = cfg.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let url = "s3://runs/exp/boot";
    // First boot: the prefix holds no run, so the startup line starts one; the machine is
    // preempted before its first checkpoint (the config is already in the bucket).
    let boot = ["resume", "--run-dir", url, "--config", cfg];
    let mut first = boot.to_vec();
    first.extend(["--stop-after", "0"]);
    cli(&server, &cache, &first).success();
    assert_eq!(s3_prefix(&server, "exp/boot").latest_step().unwrap(), None);
    // Next boot, on a fresh machine: the same line continues the run from step 1.
    std::fs::remove_dir_all(&cache).unwrap();
    let out = cli(&server, &cache, &boot).success();
    let e = stderr(&out);
    assert!(
        e.contains("holds its config but no complete checkpoint yet")
            && e.contains("starting the run at step 1")
            && e.contains("continues with its own config.toml"),
        "{e}"
    );
    let whole = tmp.path().join("whole");
    whole_local_run(Path::new(cfg), &whole);
    assert_same_checkpoint(&cache_folder(url, Some(&cache)), &whole);
    assert_eq!(
        s3_prefix(&server, "exp/boot").latest_step().unwrap(),
        Some(6)
    );
}
