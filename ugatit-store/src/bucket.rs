//! Run folders in object stores (`s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix`, `file:///path`), through the `object_store` crate.
//!
//! A bucket run mirrors the local layout under its prefix: `config.toml`, `metrics.jsonl`,
//! `tb/`, `samples/`, `checkpoints/step-N/...`, plus a small `latest` object naming the newest
//! checkpoint whose every file has been uploaded. It is written only after those uploads, so a
//! reader never picks a half-uploaded checkpoint. Credentials and endpoints come from each
//! cloud's standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as object_store's
//! `from_env` builders read them; `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP=true` serve
//! S3-compatible stores such as MinIO.
//!
//! The API is blocking: each [`RemoteRun`] owns a small tokio runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncWriteExt;

use crate::checkpoint::{checkpoint_name, Checkpoint};

/// Name of the object that names the newest fully uploaded checkpoint.
pub const LATEST: &str = "latest";
/// Files above this size are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 16 << 20;
const PART_SIZE: usize = 16 << 20;

/// A bucket problem, as one line naming the URL.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {message}")]
pub struct RemoteError {
    pub url: String,
    pub message: String,
}

/// Whether a `--run-dir` or `--model` argument is a URL rather than a local path.
pub fn is_url(s: &str) -> bool {
    s.contains("://")
}

/// A run folder in an object store.
pub struct RemoteRun {
    url: String,
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: Key,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for RemoteRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteRun({})", self.url)
    }
}

fn runtime(url: &str) -> Result<tokio::runtime::Runtime, RemoteError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RemoteError {
            url: url.to_string(),
            message: format!("cannot start the I/O runtime ({e})"),
        })
}

/// A store opened from a URL: the store, the signer for presigned URLs where the store has
/// one (S3, GCS, Azure; not `file://`), and the key prefix the URL names.
pub(crate) struct OpenedStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) signer: Option<Arc<dyn Signer>>,
    pub(crate) prefix: Key,
}

/// Opens the store `url` names, configured from the environment.
pub(crate) fn open_store(url: &str) -> Result<OpenedStore, RemoteError> {
    let err = |message: String| RemoteError {
        url: url.to_string(),
        message,
    };
    let parsed = url::Url::parse(url).map_err(|e| {
        err(format!(
            "not a URL ({e}); use s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
        ))
    })?;
    fn signing<S: ObjectStore + Signer>(s: S) -> (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>) {
        let s = Arc::new(s);
        (s.clone(), Some(s))
    }
    let (store, signer) = match parsed.scheme() {
        "s3" | "s3a" => signing(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| err(format!("cannot configure S3 ({e}); see AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL")))?,
        ),
        "gs" => signing(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| err(format!("cannot configure Google Cloud Storage ({e}); see GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT")))?,
        ),
        "az" | "azure" | "abfs" | "abfss" => signing(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| err(format!("cannot configure Azure Blob Storage ({e}); see AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY")))?,
        ),
        "file" => (
            Arc::new(object_store::local::LocalFileSystem::new()) as Arc<dyn ObjectStore>,
            None,
        ),
        other => return Err(err(format!("unsupported scheme {other}:// (use s3, gs, az or file)"))),
    };
    let path = if parsed.scheme() == "file" {
        parsed.path().to_string()
    } else {
        parsed.path().trim_start_matches('/').to_string()
    };
    let prefix =
        Key::parse(path.trim_end_matches('/')).map_err(|e| err(format!("bad prefix ({e})")))?;
    Ok(OpenedStore {
        store,
        signer,
        prefix,
    })
}

impl RemoteRun {
    /// Opens `url`, configuring the store from the environment.
    pub fn open(url: &str) -> Result<Self, RemoteError> {
        let opened = open_store(url)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store: opened.store,
            prefix: opened.prefix,
            rt: runtime(url)?,
        })
    }

    /// A run in any store (an in-memory one in tests), under `prefix`.
    pub fn with_store(
        url: &str,
        store: Arc<dyn ObjectStore>,
        prefix: &str,
    ) -> Result<Self, RemoteError> {
        Ok(Self {
            url: url.to_string(),
            store,
            prefix: Key::from(prefix),
            rt: runtime(url)?,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn key(&self, rel: &str) -> Key {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |k, part| k.clone().join(part))
    }

    pub(crate) fn err(&self, what: &str, e: impl std::fmt::Display) -> RemoteError {
        let text = e.to_string();
        let hint = if text.contains("NoSuchBucket") || text.contains("bucket does not exist") {
            " (the bucket does not exist)"
        } else if text.contains("403") || text.contains("Forbidden") || text.contains("credential")
        {
            " (check the credentials)"
        } else {
            ""
        };
        RemoteError {
            url: self.url.clone(),
            message: format!("{what}: {}{hint}", text.lines().next().unwrap_or("")),
        }
    }

    /// Uploads a local file to `rel` (in parts when large), reporting bytes sent.
    pub fn upload_file(
        &self,
        local: &Path,
        rel: &str,
        progress: &dyn Fn(u64),
    ) -> Result<(), RemoteError> {
        let key = self.key(rel);
        let unreadable =
            |e: std::io::Error| self.err(&format!("cannot read {}", local.display()), e);
        let failed = |e: object_store::Error| self.err(&format!("upload of {rel}"), e);
        let size = std::fs::metadata(local).map_err(unreadable)?.len();
        self.rt.block_on(async {
            if size <= MULTIPART_THRESHOLD {
                let bytes = tokio::fs::read(local).await.map_err(unreadable)?;
                self.store
                    .put(&key, PutPayload::from(bytes))
                    .await
                    .map_err(failed)?;
                progress(size);
                return Ok(());
            }
            let upload = self.store.put_multipart(&key).await.map_err(failed)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let sent: Result<(), RemoteError> = async {
                let mut file = tokio::fs::File::open(local).await.map_err(unreadable)?;
                let mut buf = vec![0u8; PART_SIZE];
                loop {
                    let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf)
                        .await
                        .map_err(unreadable)?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer.wait_for_capacity(4).await.map_err(failed)?;
                    writer.write(&buf[..n]);
                    progress(n as u64);
                }
            }
            .await;
            match sent {
                Ok(()) => writer.finish().await.map(|_| ()).map_err(failed),
                Err(e) => {
                    // Parts already sent would otherwise stay in the bucket (and be billed).
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })
    }

    pub fn put_bytes(&self, rel: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let key = self.key(rel);
        self.rt
            .block_on(self.store.put(&key, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.err(&format!("upload of {rel}"), e))
    }

    /// The object at `rel`, or `None` if there is none.
    pub fn get_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.key(rel);
        self.rt.block_on(async {
            match self.store.get(&key).await {
                Ok(r) => Ok(Some(
                    r.bytes()
                        .await
                        .map_err(|e| self.err(&format!("download of {rel}"), e))?
                        .to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(&format!("download of {rel}"), e)),
            }
        })
    }

    /// Downloads `rel` to `local` through a temporary file and a rename.
    pub fn download_file(&self, rel: &str, local: &Path) -> Result<(), RemoteError> {
        let key = self.key(rel);
        let tmp = local.with_extension("partial-download");
        self.rt.block_on(async {
            if let Some(dir) = local.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| self.err(&format!("cannot create {}", dir.display()), e))?;
            }
            let got = self
                .store
                .get(&key)
                .await
                .map_err(|e| self.err(&format!("download of {rel}"), e))?;
            let mut stream = got.into_stream();
            let mut file = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| self.err(&format!("cannot write {}", tmp.display()), e))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.err(&format!("download of {rel}"), e))?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| self.err(&format!("cannot write {}", tmp.display()), e))?;
            }
            file.sync_all()
                .await
                .map_err(|e| self.err(&format!("cannot write {}", tmp.display()), e))?;
            tokio::fs::rename(&tmp, local)
                .await
                .map_err(|e| self.err(&format!("cannot write {}", local.display()), e))
        })
    }

    /// Objects under `rel_prefix`, as paths relative to the run and sizes.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<(String, u64)>, RemoteError> {
        let key = self.key(rel_prefix);
        let base = self.prefix.as_ref().to_string();
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&key));
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| self.err("listing", e))?;
                let full = meta.location.as_ref().to_string();
                let rel = full
                    .strip_prefix(&base)
                    .unwrap_or(&full)
                    .trim_start_matches('/')
                    .to_string();
                out.push((rel, meta.size));
            }
            out.sort();
            Ok(out)
        })
    }

    /// Uploads every file of a complete local checkpoint, then points `latest` at it.
    pub fn upload_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        progress: &dyn Fn(u64),
    ) -> Result<(), RemoteError> {
        let name = checkpoint_name(checkpoint.step);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&checkpoint.dir)
            .map_err(|e| self.err(&format!("cannot read {}", checkpoint.dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in &files {
            let file_name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            self.upload_file(f, &format!("checkpoints/{name}/{file_name}"), progress)?;
        }
        self.put_bytes(LATEST, name.into_bytes())
    }

    /// The step `latest` names, if any.
    pub fn latest_step(&self) -> Result<Option<u64>, RemoteError> {
        Ok(self.get_bytes(LATEST)?.and_then(|b| {
            String::from_utf8_lossy(&b)
                .trim()
                .strip_prefix("step-")
                .and_then(|s| s.parse().ok())
        }))
    }

    /// Downloads the run's `config.toml` and the checkpoint `latest` names into `cache` (a
    /// local run folder), unless they are there already; returns the checkpoint's step.
    pub fn download_latest(&self, cache: &Path) -> Result<u64, RemoteError> {
        self.download_run_files(cache)?;
        let step = self.latest_step()?.ok_or_else(|| RemoteError {
            url: self.url.clone(),
            message: "holds no complete checkpoint yet (no `latest` marker)".into(),
        })?;
        self.download_checkpoint(cache, step)?;
        Ok(step)
    }

    /// Downloads the run's `config.toml` and the checkpoint of `step` (any checkpoint the bucket
    /// still holds, not only the newest) into `cache`.
    pub fn download_step(&self, cache: &Path, step: u64) -> Result<Checkpoint, RemoteError> {
        self.download_run_files(cache)?;
        self.download_checkpoint(cache, step)
    }

    /// The run's `config.toml` and metrics history into `cache`.
    fn download_run_files(&self, cache: &Path) -> Result<(), RemoteError> {
        let Some(config) = self.get_bytes("config.toml")? else {
            // A missing bucket also reads as "not found": listing tells the two apart.
            self.list("")?;
            return Err(RemoteError {
                url: self.url.clone(),
                message: "holds no run (no config.toml under this prefix)".into(),
            });
        };
        std::fs::create_dir_all(cache)
            .map_err(|e| self.err(&format!("cannot create {}", cache.display()), e))?;
        std::fs::write(cache.join("config.toml"), config)
            .map_err(|e| self.err("cannot write the cache", e))?;
        // The metrics history, so a resumed run appends to it rather than replacing it.
        let metrics = cache.join("metrics.jsonl");
        if !metrics.exists() {
            if let Some(history) = self.get_bytes("metrics.jsonl")? {
                std::fs::write(&metrics, history)
                    .map_err(|e| self.err("cannot write the cache", e))?;
            }
        }
        Ok(())
    }

    /// The checkpoint of `step` into `cache`, unless a verified copy is there already; staged
    /// in a hidden folder and renamed into place, so the cache never holds half of one.
    fn download_checkpoint(&self, cache: &Path, step: u64) -> Result<Checkpoint, RemoteError> {
        let name = checkpoint_name(step);
        let local = cache.join("checkpoints").join(&name);
        let done = Checkpoint {
            step,
            dir: local.clone(),
        };
        if done.verify().is_ok() {
            return Ok(done);
        }
        let files = self.list(&format!("checkpoints/{name}"))?;
        if files.is_empty() {
            let held: Vec<String> = self
                .checkpoint_steps()?
                .iter()
                .map(|s| s.to_string())
                .collect();
            return Err(RemoteError {
                url: self.url.clone(),
                message: format!(
                    "holds no checkpoint of step {step} (it holds steps: {})",
                    if held.is_empty() {
                        "none".to_string()
                    } else {
                        held.join(", ")
                    }
                ),
            });
        }
        let staging = cache.join("checkpoints").join(format!(".{name}.download"));
        let _ = std::fs::remove_dir_all(&staging);
        for (rel, _) in files {
            let file = rel.rsplit('/').next().unwrap_or(&rel).to_string();
            self.download_file(&rel, &staging.join(file))?;
        }
        let _ = std::fs::remove_dir_all(&local);
        std::fs::rename(&staging, &local).map_err(|e| self.err("cannot write the cache", e))?;
        Ok(done)
    }

    /// The steps of the checkpoints the bucket holds, oldest first.
    pub fn checkpoint_steps(&self) -> Result<Vec<u64>, RemoteError> {
        let mut steps: Vec<u64> = self
            .list("checkpoints")?
            .iter()
            .filter_map(|(r, _)| step_of(r))
            .collect();
        steps.sort_unstable();
        steps.dedup();
        Ok(steps)
    }

    /// Applies [`crate::checkpoint::retention`] to the bucket's own checkpoints, what `latest`
    /// names pinned; deletes the rest.
    pub fn prune(&self, keep: usize, milestone_every: u64) -> Result<(), RemoteError> {
        let latest = self.latest_step()?;
        let listed = self.list("checkpoints")?;
        let steps: Vec<u64> = listed.iter().filter_map(|(r, _)| step_of(r)).collect();
        let doomed_steps = crate::checkpoint::retention(&steps, keep, milestone_every, latest);
        let doomed: Vec<Key> = listed
            .iter()
            .filter(|(r, _)| step_of(r).is_some_and(|s| doomed_steps.contains(&s)))
            .map(|(r, _)| self.key(r))
            .collect();
        self.rt.block_on(async {
            for k in doomed {
                self.store
                    .delete(&k)
                    .await
                    .map_err(|e| self.err("pruning", e))?;
            }
            Ok(())
        })
    }
}

/// The step of a checkpoint file's key relative to the run (`checkpoints/step-N/...`).
fn step_of(rel: &str) -> Option<u64> {
    rel.split('/')
        .nth(1)
        .and_then(|d| d.strip_prefix("step-"))
        .and_then(|s| s.parse::<u64>().ok())
}

/// The local cache folder for a bucket run: `--cache-dir`, else `$XDG_CACHE_HOME/ugatit`, else
/// `~/.cache/ugatit`, then the URL made into a folder name.
pub fn cache_folder(url: &str, cache_dir: Option<&Path>) -> PathBuf {
    let base = cache_dir.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("ugatit")
    });
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The hash keeps URLs that read alike (x_y, x/y) apart.
    base.join(format!(
        "{name}-{:08x}",
        ugatit_model::init::fnv1a(url) as u32
    ))
}

/// Fetches the newest checkpoint of the bucket run at `url` into its default cache folder and
/// returns that local run folder.
pub fn fetch(url: &str) -> Result<PathBuf, RemoteError> {
    let local = cache_folder(url, None);
    RemoteRun::open(url)?.download_latest(&local)?;
    Ok(local)
}
