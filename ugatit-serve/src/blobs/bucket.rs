//! Blobs in a bucket (`--results s3://bucket/prefix`, `gs://...`, `az://...`): `inputs/<id>`
//! and `results/<id>.png` under the prefix, through the storage crate's
//! [`Objects`](ugatit_store::objects::Objects). API processes and workers on different
//! machines all reach the same bucket, and results can be handed out as the store's own
//! presigned URLs, so downloads never pass through this server.

use std::time::Duration;

use bytes::Bytes;
use ugatit_store::bucket::RemoteError;
use ugatit_store::objects::Objects;

use super::{BlobError, BlobKey, BlobStore};
use crate::jobs::unix_now;

/// The longest a presigned URL may live: S3 refuses longer ones (SigV4's limit). A status
/// request made later gets a fresh URL, so a longer `--link-ttl` still works.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 86_400);

/// Blobs under one bucket prefix.
#[derive(Debug, Clone)]
pub struct BucketBlobs {
    objects: Objects,
}

impl BucketBlobs {
    /// Opens `url`, with credentials and endpoint from the cloud's environment variables
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`). Nothing is sent until the first call.
    pub fn open(url: &str) -> Result<Self, BlobError> {
        let objects = Objects::open(url).map_err(|e| BlobError {
            store: e.url,
            key: String::new(),
            message: e.message,
        })?;
        Ok(Self::new(objects))
    }

    /// Blobs in already opened objects (an in-memory store in tests).
    pub fn new(objects: Objects) -> Self {
        Self { objects }
    }

    fn error(key: &BlobKey, e: RemoteError) -> BlobError {
        BlobError {
            store: e.url,
            key: key.path(),
            message: e.message,
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for BucketBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        self.objects
            .put(&key.path(), bytes.to_vec())
            .await
            .map_err(|e| Self::error(key, e))
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        let got = self
            .objects
            .get(&key.path())
            .await
            .map_err(|e| Self::error(key, e))?;
        Ok(got.map(Bytes::from))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.objects
            .delete(&key.path())
            .await
            .map_err(|e| Self::error(key, e))
    }

    async fn presigned_url(
        &self,
        key: &BlobKey,
        expires_at: u64,
    ) -> Result<Option<String>, BlobError> {
        let left = Duration::from_secs(expires_at.saturating_sub(unix_now()).max(1));
        self.objects
            .presigned_get(&key.path(), left.min(MAX_PRESIGN))
            .await
            .map_err(|e| Self::error(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobId;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(f))
            .unwrap()
    }

    #[test]
    fn blobs_round_trip_under_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BucketBlobs::open(&format!("file://{}/serve", dir.path().display())).unwrap();
        let id = JobId::random().unwrap();
        block_on(async {
            let key = BlobKey::result(&id);
            assert!(blobs.get(&key).await.unwrap().is_none());
            blobs.put(&key, Bytes::from_static(b"png")).await.unwrap();
            assert_eq!(blobs.get(&key).await.unwrap().unwrap(), &b"png"[..]);
            assert!(blobs.get(&BlobKey::input(&id)).await.unwrap().is_none());
            assert!(dir
                .path()
                .join("serve/results")
                .join(format!("{id}.png"))
                .is_file());
            // A folder cannot sign: results go through the server's own links.
            assert!(blobs.presigned_url(&key, u64::MAX).await.unwrap().is_none());
            blobs.delete(&key).await.unwrap();
            assert!(blobs.get(&key).await.unwrap().is_none());
        });
    }
}
