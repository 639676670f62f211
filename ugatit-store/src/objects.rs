//! Plain objects under a bucket prefix, for services that keep files (uploads, results) in a
//! bucket rather than on a disk: put, get and delete bytes by key, and presigned GET URLs
//! where the store can sign them (S3, GCS, Azure; not `file://`).
//!
//! Unlike [`RemoteRun`](crate::bucket::RemoteRun), the API is async and owns no runtime: it
//! runs on the caller's tokio runtime (a server's). Stores are opened as
//! [`bucket`](crate::bucket) opens them, with credentials from the environment.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::signer::{Method, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::bucket::{open_store, RemoteError};

/// Objects under one prefix of one store.
#[derive(Clone)]
pub struct Objects {
    url: String,
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    prefix: Key,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects({})", self.url)
    }
}

impl Objects {
    /// Opens `url` (`s3://bucket/prefix`, `gs://...`, `az://...`, `file:///path`), configuring
    /// the store from the environment. Nothing is sent until the first call.
    pub fn open(url: &str) -> Result<Self, RemoteError> {
        let opened = open_store(url)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store: opened.store,
            signer: opened.signer,
            prefix: opened.prefix,
        })
    }

    /// Objects in any store (an in-memory one in tests), under `prefix`, without signing.
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            url: url.to_string(),
            store,
            signer: None,
            prefix: Key::from(prefix),
        }
    }

    /// The URL the objects were opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether [`Objects::presigned_get`] can give URLs.
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// The full key of `rel`: its `/`-separated parts under the prefix. Empty parts are
    /// dropped; a part object_store refuses (`..`, control characters) is an error.
    fn key(&self, rel: &str) -> Result<Key, RemoteError> {
        let mut key = self.prefix.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            let part = object_store::path::PathPart::parse(part)
                .map_err(|e| self.err(&format!("bad key {rel:?}"), e))?;
            key = key.join(part);
        }
        Ok(key)
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> RemoteError {
        let text = e.to_string();
        RemoteError {
            url: self.url.clone(),
            message: format!("{what}: {}", text.lines().next().unwrap_or("")),
        }
    }

    /// Stores `bytes` at `rel`, replacing any object there (a put is atomic: readers see the
    /// old object or the new one, never part of one).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let key = self.key(rel)?;
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(&format!("upload of {rel}"), e))
    }

    /// The object at `rel`, or `None` if there is none.
    pub async fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.key(rel)?;
        let failed = |e: object_store::Error| self.err(&format!("download of {rel}"), e);
        match self.store.get(&key).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(failed)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    /// Deletes the object at `rel`; deleting a missing object is not an error (S3 does not
    /// tell the two apart, and a purge that runs twice must not fail).
    pub async fn delete(&self, rel: &str) -> Result<(), RemoteError> {
        let key = self.key(rel)?;
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&format!("delete of {rel}"), e)),
        }
    }

    /// A URL that lets anyone holding it GET the object at `rel` for `expires_in`, signed with
    /// the store's own credentials; `None` when the store cannot sign (`file://`, in-memory).
    pub async fn presigned_get(
        &self,
        rel: &str,
        expires_in: Duration,
    ) -> Result<Option<String>, RemoteError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let key = self.key(rel)?;
        signer
            .signed_url(Method::GET, &key, expires_in)
            .await
            .map(|url| Some(url.to_string()))
            .map_err(|e| self.err(&format!("signing a URL for {rel}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Objects {
        Objects::with_store(
            "memory://",
            Arc::new(object_store::memory::InMemory::new()),
            "serve",
        )
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn put_get_delete_round_trip() {
        let objects = memory();
        block_on(async {
            assert_eq!(objects.get("results/a.png").await.unwrap(), None);
            objects.put("results/a.png", vec![1, 2, 3]).await.unwrap();
            assert_eq!(
                objects.get("results/a.png").await.unwrap(),
                Some(vec![1, 2, 3])
            );
            objects.delete("results/a.png").await.unwrap();
            objects.delete("results/a.png").await.unwrap();
            assert_eq!(objects.get("results/a.png").await.unwrap(), None);
            assert_eq!(
                objects
                    .presigned_get("x", Duration::from_secs(1))
                    .await
                    .unwrap(),
                None
            );
        });
    }

    #[test]
    fn keys_cannot_climb_out_of_the_prefix() {
        let objects = memory();
        let err = block_on(objects.put("../escape", vec![])).unwrap_err();
        assert!(err.message.contains("bad key"), "{err}");
    }

    #[test]
    fn file_urls_open_without_signing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let objects = Objects::open(&url).unwrap();
        assert!(!objects.can_sign());
        block_on(objects.put("inputs/x", b"hi".to_vec())).unwrap();
        assert!(dir.path().join("inputs/x").is_file());
    }
}
