//! A bucket prefix copied into a local folder, for data sets kept in buckets: the objects under
//! the prefix are listed, and those not already present locally with the same size are
//! downloaded, several at once (at most `concurrency`), each into a hidden temporary file that
//! is synced and renamed into place, so a local file is either absent or complete. Nothing is
//! deleted locally. A second sync of an unchanged prefix downloads nothing.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::ObjectStoreExt;
use tokio::io::AsyncWriteExt;

use crate::bucket::{RemoteError, RemoteRun};

/// Downloads in flight at once unless a caller chooses otherwise: enough to hide the latency
/// of many small objects (images), few enough for any store's request limits.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// How far a sync has come, as its progress callback sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Objects under the prefix that the selection kept.
    pub listed: usize,
    /// Of those, already present locally with the same size.
    pub present: usize,
    /// Objects and bytes to download.
    pub to_fetch: usize,
    pub bytes_to_fetch: u64,
    /// Objects and bytes downloaded so far.
    pub fetched: usize,
    pub bytes_fetched: u64,
}

/// Copies the objects of `remote` whose path relative to its prefix `select` keeps into
/// `local` (at the same relative paths). `progress` is called once after the listing and then
/// after each download; the last state is returned. The first failed download stops the sync
/// (downloads in flight are dropped) and is returned.
pub fn sync_prefix(
    remote: &RemoteRun,
    local: &Path,
    select: &dyn Fn(&str) -> bool,
    concurrency: usize,
    progress: &mut dyn FnMut(&SyncProgress),
) -> Result<SyncProgress, RemoteError> {
    let mut todo = Vec::new();
    let mut state = SyncProgress::default();
    for (rel, size) in remote.list("")? {
        if !select(&rel) {
            continue;
        }
        let path = local_path(local, &rel).ok_or_else(|| {
            remote.err(
                &format!("object {rel}"),
                "its name cannot be a local file name (empty, `.` or `..` parts)",
            )
        })?;
        state.listed += 1;
        let same = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size);
        if same {
            state.present += 1;
        } else {
            state.to_fetch += 1;
            state.bytes_to_fetch += size;
            todo.push((rel, path));
        }
    }
    progress(&state);
    remote.rt.block_on(async {
        let mut downloads = futures::stream::iter(todo)
            .map(|(rel, path)| async move { download(remote, &rel, &path).await })
            .buffer_unordered(concurrency.max(1));
        while let Some(done) = downloads.next().await {
            state.fetched += 1;
            state.bytes_fetched += done?;
            progress(&state);
        }
        Ok(state)
    })
}

/// `local` joined with the parts of the object path `rel`, unless a part could leave `local`
/// or name no file.
fn local_path(local: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = local.to_path_buf();
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\\') {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

/// Downloads `rel` to `path` through `.<name>.download` beside it; returns the bytes written.
async fn download(remote: &RemoteRun, rel: &str, path: &Path) -> Result<u64, RemoteError> {
    let write_err =
        |p: &Path, e: std::io::Error| remote.err(&format!("cannot write {}", p.display()), e);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(remote.err(&format!("object {rel}"), "not a file name"));
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| write_err(dir, e))?;
    let tmp = dir.join(format!(".{}.download", name.to_string_lossy()));
    let failed = |e: object_store::Error| remote.err(&format!("download of {rel}"), e);
    let mut stream = remote
        .store
        .get(&remote.key(rel))
        .await
        .map_err(failed)?
        .into_stream();
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| write_err(&tmp, e))?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(failed)?;
        file.write_all(&chunk)
            .await
            .map_err(|e| write_err(&tmp, e))?;
        bytes += chunk.len() as u64;
    }
    file.sync_all().await.map_err(|e| write_err(&tmp, e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| write_err(path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn remote_with(objects: &[(&str, &[u8])]) -> RemoteRun {
        let store = Arc::new(object_store::memory::InMemory::new());
        let remote = RemoteRun::with_store("memory://data", store, "sets/toy").unwrap();
        for (rel, bytes) in objects {
            remote.put_bytes(rel, bytes.to_vec()).unwrap();
        }
        remote
    }

    #[test]
    fn fetches_what_is_missing_or_of_another_size_and_nothing_twice() {
        let remote = remote_with(&[
            ("trainA/0.png", b"zero"),
            ("trainA/deep/1.png", b"one"),
            ("trainB/2.png", b"two!"),
            ("notes.txt", b"not selected"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("cache");
        std::fs::create_dir_all(local.join("trainB")).unwrap();
        std::fs::create_dir_all(local.join("trainA")).unwrap();
        // Present at the same size: kept. Present at another size: fetched again.
        std::fs::write(local.join("trainB/2.png"), b"TWO!").unwrap();
        std::fs::write(local.join("trainA/0.png"), b"stale, longer").unwrap();
        let select = |rel: &str| rel.starts_with("train");
        let mut calls = Vec::new();
        let done = sync_prefix(&remote, &local, &select, 2, &mut |p| calls.push(*p)).unwrap();
        assert_eq!(
            done,
            SyncProgress {
                listed: 3,
                present: 1,
                to_fetch: 2,
                bytes_to_fetch: 7,
                fetched: 2,
                bytes_fetched: 7,
            }
        );
        assert_eq!(calls.len(), 3, "after the listing and after each download");
        assert_eq!(calls[0].fetched, 0);
        assert_eq!(std::fs::read(local.join("trainA/0.png")).unwrap(), b"zero");
        assert_eq!(
            std::fs::read(local.join("trainA/deep/1.png")).unwrap(),
            b"one"
        );
        assert_eq!(std::fs::read(local.join("trainB/2.png")).unwrap(), b"TWO!");
        assert!(!local.join("notes.txt").exists());
        assert!(!local.join("trainA/.0.png.download").exists());

        let again = sync_prefix(&remote, &local, &select, 2, &mut |_| ()).unwrap();
        assert_eq!((again.present, again.fetched), (3, 0));
    }

    #[test]
    fn object_names_never_leave_the_folder() {
        let base = Path::new("/cache");
        assert_eq!(
            local_path(base, "trainA/x.png"),
            Some(PathBuf::from("/cache/trainA/x.png"))
        );
        for bad in ["../x.png", "trainA/../../x", "a//b", "", "a\\..\\b"] {
            assert_eq!(local_path(base, bad), None, "{bad}");
        }
    }
}
