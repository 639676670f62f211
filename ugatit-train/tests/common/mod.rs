//! What several test binaries share: fixtures, real storage servers started on free loopback
//! ports (moto_server for S3; the GCS and Azure emulators live in `emulators.rs`), and checks of
//! run folders. Each binary uses part of it.
#![allow(dead_code)]

pub mod reference;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ugatit_store::checkpoint::RunDir;

/// The reference's four-step training case (ugatit-store/tests/fixtures/full_96_ch4_r2), found
/// through cargo's crate folder at run time, so a test binary built here and carried to a GPU
/// machine finds the fixtures in that machine's checkout; else through the one it was built in.
pub fn parity_case() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../ugatit-store/tests/fixtures/full_96_ch4_r2")
}

/// The case's six networks (`official.pt`, the reference's initial weights) and what the file
/// held.
pub fn parity_model<B: burn::prelude::Backend>(
    device: &B::Device,
) -> (ugatit_model::Ugatit<B>, ugatit_store::LoadedTensors) {
    ugatit_store::load_model::<B>(&parity_case().join("official.pt"), device).unwrap()
}

/// One of the case's images as a `[1, 3, S, S]` batch in [-1, 1].
pub fn parity_image<B: burn::prelude::Backend>(
    path: &str,
    device: &B::Device,
) -> burn::prelude::Tensor<B, 4> {
    let img = ugatit_io::read_rgb(&parity_case().join(path), u64::MAX).unwrap();
    let mut v = Vec::new();
    ugatit_train::data::push_planar(&img, &mut v);
    let s = img.width() as usize;
    burn::prelude::Tensor::from_data(burn::tensor::TensorData::new(v, [1, 3, s, s]), device)
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ugatit-store/tests/fixtures")
}

/// A server process on a loopback port, stopped when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `program args` (which must listen on `port`) and waits until it answers.
    pub fn start(program: &str, args: &[String], port: u16) -> Server {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let server = Server { child, port };
        let begun = Instant::now();
        // A connection to a port nobody listens on can still succeed when the kernel picks that
        // same port as its source (TCP self-connect): only a distinct peer counts as the server.
        let answers = || {
            TcpStream::connect(("127.0.0.1", port))
                .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
        };
        while !answers() {
            assert!(
                begun.elapsed() < Duration::from_secs(60),
                "{program} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An HTTP/1.0 request (so the answer is never chunked); the whole answer.
    pub fn request(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// A request that must answer 200.
    pub fn ok(&self, method: &str, path: &str, body: &str) {
        let answer = self.request(method, path, body).unwrap_or_default();
        assert!(
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
            "{answer}"
        );
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// moto_server, a real S3-compatible server (`pip install "moto[server]"`; scripts/test.sh
/// installs it), with `bucket` created.
pub fn moto(bucket: &str) -> Server {
    let port = free_port();
    let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from);
    let server = Server::start("moto_server", &args, port);
    server.ok("PUT", &format!("/{bucket}"), "");
    server
}

/// The environment that points object_store's S3 client at `server`.
pub fn s3_env(server: &Server) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", server.endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ]
}

/// Two tiny two-domain images per domain under `dir/data`, and a config training on them at
/// 32 px for 6 steps with checkpoints every 2; `extra` is appended (more TOML sections).
pub fn tiny_config(dir: &Path, extra: &str) -> PathBuf {
    let data = dir.join("data");
    for (d, src) in [("trainA", "testA/a.png"), ("trainB", "testB/b.png")] {
        std::fs::create_dir_all(data.join(d)).unwrap();
        for (i, case) in ["full_96_ch4_r2", "light_128_ch8_r3"].iter().enumerate() {
            std::fs::copy(
                fixtures().join(case).join("data").join(src),
                data.join(d).join(format!("{i}.png")),
            )
            .unwrap();
        }
    }
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[model]\nimg_size = 32\nch = 2\nn_res = 1\nn_dis_global = 4\nn_dis_local = 3\n\
             [data]\nroot = {:?}\n{extra}",
            data.display().to_string()
        ),
    )
    .unwrap();
    cfg
}

/// The newest checkpoints of two run folders are of the same step and hold the same bytes.
pub fn assert_same_checkpoint(a: &Path, b: &Path) {
    let (x, y) = (
        RunDir::new(a).latest().unwrap().unwrap(),
        RunDir::new(b).latest().unwrap().unwrap(),
    );
    assert_eq!(x.step, y.step);
    for f in [
        "nets.safetensors",
        "optim_g.bin",
        "optim_d.bin",
        "trainer.json",
    ] {
        assert!(
            std::fs::read(x.dir.join(f)).unwrap() == std::fs::read(y.dir.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

pub fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

/// `ugatit-train ARGS` with `env` set, caching bucket runs in `cache`. (`export` runs on the CPU
/// only and takes no `--device`.)
pub fn train_cli(
    env: &[(&str, String)],
    cache: &Path,
    args: &[&str],
) -> assert_cmd::assert::Assert {
    let mut cmd = assert_cmd::Command::cargo_bin("ugatit-train").unwrap();
    cmd.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    if args[0] != "export" {
        cmd.args(["--device", "cpu"]);
    }
    cmd.arg("--cache-dir").arg(cache).assert()
}

/// A run of `cfg` in the bucket at `url` stopped after 3 steps, then resumed on a fresh machine
/// (`cache` removed first) to its end.
pub fn train_stop_and_resume_fresh(env: &[(&str, String)], cache: &Path, cfg: &str, url: &str) {
    let first = [
        "train",
        "--config",
        cfg,
        "--run-dir",
        url,
        "--stop-after",
        "3",
    ];
    train_cli(env, cache, &first).success();
    std::fs::remove_dir_all(cache).unwrap();
    train_cli(env, cache, &["resume", "--run-dir", url]).success();
}

/// The arguments exporting the `direction` generator of `step` of the run at `url` to `out`.
pub fn export_args<'a>(
    url: &'a str,
    step: &'a str,
    direction: &'a str,
    out: &'a Path,
) -> Vec<&'a str> {
    let out = out.to_str().unwrap();
    vec![
        "export",
        "--run-dir",
        url,
        "--step",
        step,
        "--direction",
        direction,
        "-o",
        out,
    ]
}
