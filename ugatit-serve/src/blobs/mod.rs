//! Where uploaded images and results are kept: a small object-store trait with a local-folder
//! implementation ([`local`]) and one for buckets. Both the API and the workers use the same
//! store, so with a bucket any worker can read any upload.

pub mod bucket;
pub mod local;

use bytes::Bytes;

use crate::jobs::JobId;

/// Which of a job's two blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// The uploaded file, exactly as received.
    Input,
    /// The translated image, PNG without metadata.
    Result,
}

/// A blob's name: a kind and a job id. Only the id (validated hex) appears in the key; nothing a
/// user uploaded, such as a file name, ever does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey {
    pub kind: BlobKind,
    pub id: JobId,
}

impl BlobKey {
    pub fn input(id: &JobId) -> Self {
        Self {
            kind: BlobKind::Input,
            id: id.clone(),
        }
    }

    pub fn result(id: &JobId) -> Self {
        Self {
            kind: BlobKind::Result,
            id: id.clone(),
        }
    }

    /// The relative path or object key: `inputs/<id>` or `results/<id>.png`.
    pub fn path(&self) -> String {
        match self.kind {
            BlobKind::Input => format!("inputs/{}", self.id),
            BlobKind::Result => format!("results/{}.png", self.id),
        }
    }
}

/// A blob store failure, in one line naming the store and the key.
#[derive(Debug, thiserror::Error)]
#[error("blob store {store}: {key}: {message}")]
pub struct BlobError {
    pub store: String,
    pub key: String,
    pub message: String,
}

/// Private storage for inputs and results.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing any earlier blob. When it returns `Ok` the blob
    /// survives a crash of the process and the machine (local: file and folder fsynced; bucket:
    /// the store acknowledged it). Readers see either the old or the new blob whole, never a
    /// mix, so two workers storing the same result race harmlessly.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError>;

    /// The blob, or `None` if there is none.
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError>;

    /// Removes the blob; a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// A URL from which anyone holding it may download the blob until `expires_at` (Unix
    /// seconds) without passing through this server, if the store can sign one (a bucket's
    /// presigned GET). `None` (the default) means results are served by the server's own signed
    /// `/r/` links.
    async fn presigned_url(
        &self,
        _key: &BlobKey,
        _expires_at: u64,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }
}
