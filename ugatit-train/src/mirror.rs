//! Mirroring a run's local cache folder to its bucket, in the background: the config first,
//! each checkpoint once it is complete locally (then the `latest` marker), retention as the
//! local run's, and metrics, TensorBoard files and samples every few minutes and at the end. A
//! training step never waits for an upload.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ugatit_store::bucket::{RemoteError, RemoteRun};
use ugatit_store::checkpoint::Checkpoint;

/// How often logs and samples are copied up.
const LOG_INTERVAL: Duration = Duration::from_secs(300);
/// Tries per upload, with doubling waits between them.
const TRIES: u32 = 4;

enum Job {
    Config,
    Checkpoint(Checkpoint),
    Finish,
}

/// The background uploader of one run.
pub struct Mirror {
    tx: Sender<Job>,
    worker: Option<JoinHandle<()>>,
}

/// Retries `f` with exponential backoff, reporting the last failure.
fn with_retries(what: &str, mut f: impl FnMut() -> Result<(), RemoteError>) -> bool {
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=TRIES {
        match f() {
            Ok(()) => return true,
            Err(e) if attempt == TRIES => {
                eprintln!("warning: {what} failed after {TRIES} tries: {e} (retried with the next checkpoint)");
            }
            Err(_) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
    false
}

/// Uploads the logs and samples that changed since the last call.
fn upload_logs(
    remote: &RemoteRun,
    local: &Path,
    sent: &mut std::collections::BTreeMap<PathBuf, u64>,
) {
    let mut files = vec![local.join("metrics.jsonl")];
    for dir in ["tb", "samples"] {
        if let Ok(entries) = std::fs::read_dir(local.join(dir)) {
            files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    for f in files.into_iter().filter(|f| f.is_file()) {
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        if sent.get(&f) == Some(&size) {
            continue;
        }
        let rel = f
            .strip_prefix(local)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if with_retries(&format!("upload of {rel}"), || {
            remote.upload_file(&f, &rel, &|_| ())
        }) {
            sent.insert(f, size);
        }
    }
}

/// Checkpoints larger than this show a progress bar (on a terminal) while uploading.
const LARGE: u64 = 256 << 20;

fn transfer_bar(dir: &Path) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let total: u64 = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    if total < LARGE || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "uploading {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

impl Mirror {
    /// Starts mirroring `local` (the cache folder) to `remote`.
    pub fn start(remote: RemoteRun, local: PathBuf, keep: usize, milestone_every: u64) -> Self {
        let (tx, rx) = channel::<Job>();
        let worker = std::thread::spawn(move || {
            let mut sent = Default::default();
            let mut config_sent = false;
            let mut last_logs = Instant::now();
            loop {
                let job = match rx.recv_timeout(LOG_INTERVAL.saturating_sub(last_logs.elapsed())) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        upload_logs(&remote, &local, &mut sent);
                        last_logs = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => Job::Finish,
                };
                match job {
                    Job::Config => {
                        config_sent = with_retries("upload of config.toml", || {
                            remote.upload_file(&local.join("config.toml"), "config.toml", &|_| ())
                        });
                    }
                    Job::Checkpoint(c) => {
                        // A bucket without its config holds no resumable run: retry it first.
                        if !config_sent {
                            config_sent = with_retries("upload of config.toml", || {
                                remote.upload_file(
                                    &local.join("config.toml"),
                                    "config.toml",
                                    &|_| (),
                                )
                            });
                        }
                        let bar = transfer_bar(&c.dir);
                        let tick = |n: u64| {
                            if let Some(b) = &bar {
                                b.inc(n);
                            }
                        };
                        let uploaded =
                            with_retries(&format!("upload of checkpoint {}", c.step), || {
                                if let Some(b) = &bar {
                                    b.set_position(0);
                                }
                                remote.upload_checkpoint(&c, &tick)
                            });
                        if let Some(b) = bar {
                            b.finish_and_clear();
                        }
                        if uploaded {
                            with_retries("pruning old checkpoints", || {
                                remote.prune(keep, milestone_every)
                            });
                        }
                    }
                    Job::Finish => {
                        upload_logs(&remote, &local, &mut sent);
                        return;
                    }
                }
            }
        });
        Self {
            tx,
            worker: Some(worker),
        }
    }

    pub fn config(&self) {
        let _ = self.tx.send(Job::Config);
    }

    pub fn checkpoint(&self, c: Checkpoint) {
        let _ = self.tx.send(Job::Checkpoint(c));
    }

    /// Uploads what is left and waits for every pending upload.
    pub fn finish(mut self) {
        eprintln!("waiting for uploads to finish...");
        let _ = self.tx.send(Job::Finish);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
