//! Blobs as files in a local folder (the default, under `--data-dir`): `inputs/<id>`,
//! `results/<id>.png`. Each put writes a temporary file in `tmp/`, fsyncs it, renames it into
//! place and fsyncs the folder, so a crash leaves the old blob or the new one, whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::{BlobError, BlobKey, BlobStore};

/// How old a temporary file must be to count as left over from a crash.
pub const STALE: Duration = Duration::from_secs(3600);

/// A folder of blobs.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Uses (and creates) `root` with its `inputs/`, `results/` and `tmp/` folders. Temporary
    /// files left by an interrupted put are removed once they are [`STALE`] old (younger ones
    /// may belong to another process sharing the folder).
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let fail = |e: std::io::Error| BlobError {
            store: root.display().to_string(),
            key: String::new(),
            message: e.to_string(),
        };
        for sub in ["inputs", "results", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).map_err(fail)?;
        }
        for entry in std::fs::read_dir(root.join("tmp")).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a >= STALE) {
                std::fs::remove_file(entry.path()).map_err(fail)?;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn error(&self, key: &BlobKey, e: impl std::fmt::Display) -> BlobError {
        BlobError {
            store: self.root.display().to_string(),
            key: key.path(),
            message: e.to_string(),
        }
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        key: &BlobKey,
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, BlobError> {
        match tokio::task::spawn_blocking(work).await {
            Ok(r) => r.map_err(|e| self.error(key, e)),
            Err(e) => Err(self.error(key, e)),
        }
    }
}

/// Writes `bytes` to `path` through `tmp`, durably.
fn write_durably(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| self.error(key, e))?;
        let tmp = self.root.join("tmp").join(hex::encode(nonce));
        let path = self.root.join(key.path());
        self.blocking(key, move || write_durably(&tmp, &path, &bytes))
            .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        let path = self.root.join(key.path());
        self.blocking(key, move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.root.join(key.path());
        self.blocking(key, move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobId;

    #[tokio::test]
    async fn puts_gets_replaces_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        let key = BlobKey::result(&JobId::random().unwrap());
        assert_eq!(blobs.get(&key).await.unwrap(), None);
        blobs.put(&key, Bytes::from_static(b"one")).await.unwrap();
        blobs.put(&key, Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(blobs.get(&key).await.unwrap().unwrap(), &b"two"[..]);
        assert!(dir.path().join(key.path()).is_file());
        blobs.delete(&key).await.unwrap();
        blobs.delete(&key).await.unwrap();
        assert_eq!(blobs.get(&key).await.unwrap(), None);
        assert_eq!(blobs.presigned_url(&key, 0).await.unwrap(), None);
    }
}
