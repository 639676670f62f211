//! Mirroring a run's local cache folder to its bucket, in the background: the config first,
//! each checkpoint once it is complete locally (after the metrics history, then the `latest`
//! marker), retention as the local run's, and every upload interval the TensorBoard files the
//! writer has closed and the new samples; at the end, whatever is left. A training step never
//! waits for an upload, and no log byte is sent twice (objects cannot be appended to):
//! - TensorBoard: the writer starts a new event file each interval (see [`RollSignal`]), and
//!   each closed file is uploaded once, whole.
//! - `metrics.jsonl`: the whole history, but only with each checkpoint (which is far larger)
//!   and at the end, so a resume on a fresh machine finds the history up to the checkpoint it
//!   starts from. Between checkpoints, TensorBoard's files carry the same scalars.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ugatit_store::bucket::{RemoteError, RemoteRun};
use ugatit_store::checkpoint::Checkpoint;

use crate::log::RollSignal;

/// How often closed TensorBoard files and samples are copied up.
pub const LOG_INTERVAL: Duration = Duration::from_secs(300);
/// Tries per upload, with doubling waits between them.
const TRIES: u32 = 4;
/// The metrics history, relative to the run folder.
const METRICS: &str = "metrics.jsonl";
/// The folders of files written once (event files once closed, sample grids).
const LOG_DIRS: [&str; 2] = ["tb", "samples"];

enum Job {
    Config,
    Checkpoint(Checkpoint),
    Finish,
}

/// The background uploader of one run.
pub struct Mirror {
    tx: Sender<Job>,
    worker: Option<JoinHandle<()>>,
    rolls: RollSignal,
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

/// What the bucket holds of the run's logs: size by path relative to the run.
type Sent = BTreeMap<String, u64>;

/// The log files a bucket already holds (from an earlier process of the run), so that a resumed
/// run does not send them again. A failed listing only costs re-uploads.
fn already_sent(remote: &RemoteRun) -> Sent {
    LOG_DIRS
        .iter()
        .filter_map(|dir| remote.list(dir).ok())
        .flatten()
        .collect()
}

/// Uploads `rel` unless the bucket holds it at its current size.
fn upload_once(remote: &RemoteRun, local: &Path, rel: &str, sent: &mut Sent) {
    let path = local.join(rel);
    let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else {
        return;
    };
    if sent.get(rel) == Some(&size) {
        return;
    }
    if with_retries(&format!("upload of {rel}"), || {
        remote.upload_file(&path, rel, &|_| ())
    }) {
        sent.insert(rel.to_string(), size);
    }
}

/// The files of `dir` (relative to the run folder), sorted by name.
fn files_in(local: &Path, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(local.join(dir))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// Uploads the closed event files and the samples not yet sent; with `at_end` (the writer is
/// gone), also the newest event file and the metrics history.
fn upload_logs(remote: &RemoteRun, local: &Path, sent: &mut Sent, at_end: bool) {
    let mut events = files_in(local, "tb");
    if !at_end {
        // The writer may still append to the newest: it names each new file to sort after the
        // others, and starts it only once the previous one is complete.
        events.pop();
    }
    for rel in events.iter().chain(&files_in(local, "samples")) {
        upload_once(remote, local, rel, sent);
    }
    if at_end {
        upload_once(remote, local, METRICS, sent);
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
        Self::start_every(remote, local, keep, milestone_every, LOG_INTERVAL)
    }

    /// [`Mirror::start`] with logs copied up every `interval` instead of [`LOG_INTERVAL`].
    pub fn start_every(
        remote: RemoteRun,
        local: PathBuf,
        keep: usize,
        milestone_every: u64,
        interval: Duration,
    ) -> Self {
        let (tx, rx) = channel::<Job>();
        let rolls = RollSignal::default();
        let roll = rolls.clone();
        let worker = std::thread::spawn(move || {
            let mut sent = already_sent(&remote);
            let mut config_sent = false;
            let mut last_logs = Instant::now();
            let upload_config = || {
                with_retries("upload of config.toml", || {
                    remote.upload_file(&local.join("config.toml"), "config.toml", &|_| ())
                })
            };
            loop {
                let job = match rx.recv_timeout(interval.saturating_sub(last_logs.elapsed())) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        upload_logs(&remote, &local, &mut sent, false);
                        // The file this closes goes up with the next interval's logs.
                        roll.request();
                        last_logs = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => Job::Finish,
                };
                match job {
                    Job::Config => config_sent = upload_config(),
                    Job::Checkpoint(c) => {
                        // A bucket without its config holds no resumable run: retry it first.
                        if !config_sent {
                            config_sent = upload_config();
                        }
                        // The history first: it reaches past the checkpoint's step, so a
                        // resume from the bucket never finds a gap before the step it starts at.
                        upload_once(&remote, &local, METRICS, &mut sent);
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
                        upload_logs(&remote, &local, &mut sent, true);
                        return;
                    }
                }
            }
        });
        Self {
            tx,
            worker: Some(worker),
            rolls,
        }
    }

    pub fn config(&self) {
        let _ = self.tx.send(Job::Config);
    }

    pub fn checkpoint(&self, c: Checkpoint) {
        let _ = self.tx.send(Job::Checkpoint(c));
    }

    /// The signal to give the run's [`EventWriter`](crate::log::EventWriter): each upload
    /// interval, it asks for a new file, so the one it closes can be uploaded once.
    pub fn event_rolls(&self) -> RollSignal {
        self.rolls.clone()
    }

    /// Uploads what is left and waits for every pending upload. Call it once the run's
    /// [`EventWriter`](crate::log::EventWriter) is dropped: its last file goes up whole.
    pub fn finish(mut self) {
        eprintln!("waiting for uploads to finish...");
        let _ = self.tx.send(Job::Finish);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
