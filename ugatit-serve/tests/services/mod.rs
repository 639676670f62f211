//! The real servers the scale-out and email tests run against, each started here on a free
//! loopback port and killed when dropped: Redis (Debian's `redis-server`), an S3 bucket
//! (`moto_server`, as the storage crate's bucket tests use) and an SMTP sink (Python's
//! `aiosmtpd` writing each message into a Maildir). scripts/test.sh installs all three.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until `port` accepts connections, failing if `child` exits first. For servers that
/// do not say when they are ready.
fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    // A connect to a port nobody listens on can still succeed when the kernel picks that same
    // port as its source (TCP self-connect): only a distinct peer counts as listening.
    let listening = || {
        TcpStream::connect(("127.0.0.1", port))
            .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
    };
    while !listening() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Redis server without persistence, its files under `dir`; returns it and its URL.
pub fn redis(dir: &Path) -> (Running, String) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server; scripts/test.sh does)");
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    // It says when it is ready; read on after that so it never writes to a closed pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Ready to accept connections") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("redis-server did not start");
    (server, format!("redis://127.0.0.1:{port}"))
}

/// One plain HTTP/1.1 request without a body; the whole response as text.
pub fn http(port: u16, method: &str, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// An S3 server holding an empty bucket named `bucket`.
pub struct Moto {
    _server: Running,
    pub port: u16,
    pub bucket: String,
}

impl Moto {
    pub fn start(bucket: &str) -> Moto {
        let port = free_port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install \"moto[server]\"; scripts/test.sh does)");
        wait_for_port(port, "moto_server", &mut child);
        let server = Running(child);
        let created = http(port, "PUT", &format!("/{bucket}"));
        assert!(created.starts_with("HTTP/1.1 200"), "{created}");
        Moto {
            _server: server,
            port,
            bucket: bucket.to_string(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `AWS_*` variables that point object_store (in a child process) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
    }

    /// The keys under `prefix`, read with a plain ListObjectsV2 request.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let listing = http(
            self.port,
            "GET",
            &format!("/{}?list-type=2&max-keys=1000&prefix={prefix}", self.bucket),
        );
        assert!(listing.starts_with("HTTP/1.1 200"), "{listing}");
        let mut keys: Vec<String> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }
}

/// An SMTP server that writes every message it gets into a Maildir.
pub struct SmtpSink {
    _server: Running,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    pub fn start(maildir: &Path) -> SmtpSink {
        let port = free_port();
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd; scripts/test.sh does)");
        wait_for_port(port, "aiosmtpd", &mut child);
        SmtpSink {
            _server: Running(child),
            port,
            maildir: maildir.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages delivered so far, as raw text (the Maildir moves each into `new/` only
    /// once it is written whole).
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}
