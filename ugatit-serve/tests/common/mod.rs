//! What the serve tests share: the `ugatit-serve` binary started on a loopback port with the
//! small light model, its log, and HTTP helpers.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use serde_json::Value;

/// The light 128 model (ch 8, 3 residual blocks) the storage crate's fixtures hold, made with
/// `shared/reference/make_case.py` (see that folder's README).
pub fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ugatit-store/tests/fixtures/light_128_ch8_r3/official.pt")
}

/// The side the tests translate at (a light official `.pt` does not fix it).
pub const SIZE: usize = 128;

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread copying stderr into `log`; joined once the process has exited, so the log
    /// is complete when read after an exit.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `ugatit-serve` with the small model on a free loopback port over `data_dir`,
    /// with `extra` flags, and waits until it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_on("cpu", data_dir, extra)
    }

    /// [`Server::start`] with the model on `device`.
    pub fn start_on(device: &str, data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ugatit-serve"));
        cmd.arg("--model")
            .arg(model())
            .args([
                "--size",
                &SIZE.to_string(),
                "--listen",
                "127.0.0.1:0",
                "--device",
                device,
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ugatit-serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(b) => b,
            Err(_) => panic!("server did not start: {:?}", log.lock().unwrap()),
        };
        Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            log,
            reader: Some(reader),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every line the server wrote to stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        self.finish_log();
    }

    /// Waits for the stderr reader to reach the end of the exited process's output.
    fn finish_log(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        let status = self.child.wait().expect("wait");
        self.finish_log();
        status
    }

    /// The peak resident memory of the server process, in bytes (Linux).
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// `image` as PNG bytes.
pub fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A 200x150 test picture with some structure.
pub fn picture() -> RgbImage {
    RgbImage::from_fn(200, 150, |x, y| {
        image::Rgb([
            (x * 255 / 199) as u8,
            (y * 255 / 149) as u8,
            ((x + y) % 256) as u8,
        ])
    })
}

/// Posts an upload form: the file and the optional text fields.
pub async fn upload(
    client: &reqwest::Client,
    server: &Server,
    file: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(file).file_name("../../etc/passwd.png"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let response = client
        .post(server.url("/api/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// The body of a GET, as text (the Prometheus metrics).
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// GET as JSON: status and body.
pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls the job's status until it is finished (done or failed), within `limit`.
pub async fn wait_finished(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    limit: Duration,
) -> Value {
    let start = Instant::now();
    loop {
        let (code, body) = get_json(client, &server.url(&format!("/api/v1/jobs/{id}"))).await;
        assert_eq!(code, 200, "{body}");
        if body["status"] == "done" || body["status"] == "failed" {
            return body;
        }
        assert!(
            start.elapsed() < limit,
            "job {id} not finished after {limit:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The largest difference between two images of the same size, in grey levels.
pub fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}
