//! Where a run reads its images. `data.root` is a local folder, or a bucket prefix (`s3://`,
//! `gs://`, `az://`, `file://`) with the same layout, whose images are fetched into the local
//! cache once (in parallel, with a progress bar) and read from there. A run whose data and
//! checkpoints both live in buckets therefore resumes on a fresh machine with one command, and
//! a resume on a machine that has the images already downloads nothing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use ugatit_io::image_file::is_image_path;
use ugatit_store::bucket::{cache_folder, is_url, RemoteError, RemoteRun};
use ugatit_store::bucket_sync::{sync_prefix, SyncProgress, DEFAULT_CONCURRENCY};

/// The folders of a data set; a bucket's other objects are not fetched.
pub const FOLDERS: [&str; 4] = ["trainA", "trainB", "testA", "testB"];

/// Why a run's data cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum DataSourceError {
    #[error("data.root {} does not exist (a relative path in a config file is relative to the file's folder; one given with --set, to the current folder)", root.display())]
    Missing { root: PathBuf },
    #[error("data.root {} does not exist on this machine (the run's config.toml names it as the machine that started the run saw it): copy the data set there, or point the run at it with `ugatit-train resume --run-dir RUN --set data.root=PATH` (a folder, or a bucket URL: s3://, gs://, az://)", root.display())]
    MissingOnResume { root: PathBuf },
    #[error("data.root {url}: holds no images under {}", FOLDERS.map(|f| format!("{f}/")).join(", "))]
    EmptyBucket { url: String },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Whether `root` names a bucket prefix rather than a local folder.
pub fn is_bucket(root: &Path) -> bool {
    root.to_str().is_some_and(is_url)
}

/// The local folder holding `root`'s images: `root` itself, or for a bucket URL its copy in
/// `cache_dir` (else the default cache folder: see [`cache_folder`]), fetched now where
/// missing.
pub fn local_root(root: &Path, cache_dir: Option<&Path>) -> Result<PathBuf, DataSourceError> {
    let Some(url) = root.to_str().filter(|s| is_url(s)) else {
        return Ok(root.to_path_buf());
    };
    let local = cache_folder(url, cache_dir);
    let remote = RemoteRun::open(url)?;
    let mut bar = None;
    let done = sync_prefix(
        &remote,
        &local,
        &is_data_set_image,
        DEFAULT_CONCURRENCY,
        &mut |p: &SyncProgress| report(url, &local, p, &mut bar),
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if done.listed == 0 {
        return Err(DataSourceError::EmptyBucket {
            url: url.to_string(),
        });
    }
    if done.fetched > 0 {
        eprintln!(
            "fetched {} images ({}) of {url} into {}",
            done.fetched,
            mib(done.bytes_fetched),
            local.display()
        );
    }
    Ok(local)
}

/// An image file in one of the data set's [`FOLDERS`] (by its path relative to the root).
fn is_data_set_image(rel: &str) -> bool {
    rel.split_once('/')
        .is_some_and(|(top, _)| FOLDERS.contains(&top))
        && is_image_path(Path::new(rel))
}

/// Says what a sync will fetch, then advances a byte progress bar (on a terminal).
fn report(url: &str, local: &Path, p: &SyncProgress, bar: &mut Option<ProgressBar>) {
    if p.fetched == 0 {
        eprintln!(
            "data.root {url}: {} images, {} in {}; fetching {} ({})",
            p.listed,
            p.present,
            local.display(),
            p.to_fetch,
            mib(p.bytes_to_fetch)
        );
        if p.to_fetch > 0 && std::io::stderr().is_terminal() {
            let b = ProgressBar::new(p.bytes_to_fetch);
            b.set_style(
                ProgressStyle::with_template(
                    "fetching {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            *bar = Some(b);
        }
    }
    if let Some(b) = bar {
        b.set_position(p.bytes_fetched);
        b.set_message(format!("{}/{} images", p.fetched, p.to_fetch));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
