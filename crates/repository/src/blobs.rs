//! Object storage for photo bytes, beside the database rather than in it.
//!
//! A [`BlobStore`] keeps immutable byte strings under validated keys. It is chosen once at start:
//! [`LocalBlobStore`] (a directory under the data dir, the default) or, to scale out, an
//! S3-compatible bucket. Every call takes the caller's [`Deadline`]; an error says whether it is
//! worth retrying ([`BlobError::is_transient`]), which is what the services' retry policy asks.
//!
//! Blobs and rows cannot share a transaction, so the order is fixed: blobs are written before
//! the row that names them commits, and deleted after the row's deletion commits. A crash
//! between the two leaves an unnamed blob, never a row naming a missing one; `stride photos gc`
//! finds such blobs with [`BlobStore::list`].

use std::future::Future;
use std::path::PathBuf;

use crate::disk_io::{blocking, collect_keys, write_atomically, write_atomically_with};

use bytes::Bytes;
use futures::future::BoxFuture;
use stride_concurrency::Deadline;

/// Where a blob lives: `a-z`, `0-9`, `-`, `_`, `.` in segments separated by `/`, at most 256
/// bytes. No segment may be empty or start with a dot, so a key can never climb out of its
/// store (`..`) nor collide with the local store's temporary files (`.name.tmp-…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    pub const MAX_LEN: usize = 256;

    pub fn parse(key: &str) -> Result<Self, BlobError> {
        let valid_segment = |segment: &str| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        };
        if key.len() > Self::MAX_LEN || !key.split('/').all(valid_segment) {
            return Err(BlobError::Other(format!("invalid blob key {key:?}")));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    /// The call's deadline passed.
    #[error("storage deadline exceeded")]
    Timeout,
    /// A failure that may pass: a 5xx, throttling, a reset connection, a full disk.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A failure that retrying will not fix: a bad key, refused credentials.
    #[error("storage error: {0}")]
    Other(String),
}

impl BlobError {
    /// Worth another attempt within the caller's budget.
    pub fn is_transient(&self) -> bool {
        matches!(self, BlobError::Timeout | BlobError::Unavailable(_))
    }
}

pub type BlobResult<T> = Result<T, BlobError>;

/// Immutable bytes by key. Cheap to clone; clones share the backend.
pub trait BlobStore: Clone + Send + Sync + 'static {
    /// The metrics label: `disk` or `s3`.
    const BACKEND: &'static str;

    /// Stores `bytes` under `key`, replacing what was there. When it returns `Ok`, the blob is
    /// durable and whole; a reader never sees part of it.
    fn put(
        &self,
        key: &BlobKey,
        bytes: Bytes,
        content_type: &'static str,
        deadline: Deadline,
    ) -> impl Future<Output = BlobResult<()>> + Send;

    fn get(&self, key: &BlobKey, deadline: Deadline) -> impl Future<Output = BlobResult<Bytes>> + Send;

    /// Removes `key`; removing a missing key succeeds, so cleanup can be retried freely.
    fn delete(&self, key: &BlobKey, deadline: Deadline) -> impl Future<Output = BlobResult<()>> + Send;

    /// Every key starting with `prefix`, sorted (for garbage collection).
    fn list(&self, prefix: &str, deadline: Deadline) -> impl Future<Output = BlobResult<Vec<BlobKey>>> + Send;

    /// Stores the local file at `path` under `key` as [`BlobStore::put`] does, streaming it:
    /// an archive of a gigabyte is never held in memory.
    fn put_file(
        &self,
        key: &BlobKey,
        path: PathBuf,
        content_type: &'static str,
        deadline: Deadline,
    ) -> impl Future<Output = BlobResult<()>> + Send;

    /// Writes the blob into the local file at `path`, streaming it; the reader of an archive
    /// needs to seek, which a download cannot.
    fn get_to_file(
        &self,
        key: &BlobKey,
        path: PathBuf,
        deadline: Deadline,
    ) -> impl Future<Output = BlobResult<()>> + Send;

    /// The blob's own file, when the store keeps blobs as files: read in place, not copied.
    fn local_path(&self, key: &BlobKey) -> Option<PathBuf> {
        let _ = key;
        None
    }

    /// A URL that serves `key` without Stride for `ttl`, if the backend can mint one (S3
    /// presigned GETs); `None` means "stream it through Stride".
    fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: std::time::Duration,
    ) -> impl Future<Output = BlobResult<Option<String>>> + Send {
        let _ = (key, ttl);
        std::future::ready(Ok(None))
    }
}

/// A [`BlobStore`] behind a pointer, so the services pick the backend at start without being
/// generic over it (and tests can hand in a mockall mock). Every future is `'static`: a
/// storage call can be moved into a spawned task that outlives the borrow it started from,
/// which is how an abandoned upload's puts finish before its cleanup deletes them.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait DynBlobStore: Send + Sync + 'static {
    /// The metrics label: `disk` or `s3`.
    fn backend(&self) -> &'static str;
    fn put_blob(
        &self,
        key: BlobKey,
        bytes: Bytes,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BoxFuture<'static, BlobResult<()>>;
    fn get_blob(&self, key: BlobKey, deadline: Deadline) -> BoxFuture<'static, BlobResult<Bytes>>;
    fn delete_blob(&self, key: BlobKey, deadline: Deadline) -> BoxFuture<'static, BlobResult<()>>;
    fn list_blobs(&self, prefix: String, deadline: Deadline) -> BoxFuture<'static, BlobResult<Vec<BlobKey>>>;
    fn put_blob_file(
        &self,
        key: BlobKey,
        path: PathBuf,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BoxFuture<'static, BlobResult<()>>;
    fn get_blob_to_file(&self, key: BlobKey, path: PathBuf, deadline: Deadline) -> BoxFuture<'static, BlobResult<()>>;
    fn blob_local_path(&self, key: &BlobKey) -> Option<PathBuf>;
    fn presigned_blob_url(
        &self,
        key: BlobKey,
        ttl: std::time::Duration,
    ) -> BoxFuture<'static, BlobResult<Option<String>>>;
}

impl<B: BlobStore> DynBlobStore for B {
    fn backend(&self) -> &'static str {
        B::BACKEND
    }

    fn put_blob(
        &self,
        key: BlobKey,
        bytes: Bytes,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BoxFuture<'static, BlobResult<()>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::put(&store, &key, bytes, content_type, deadline).await })
    }

    fn get_blob(&self, key: BlobKey, deadline: Deadline) -> BoxFuture<'static, BlobResult<Bytes>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::get(&store, &key, deadline).await })
    }

    fn delete_blob(&self, key: BlobKey, deadline: Deadline) -> BoxFuture<'static, BlobResult<()>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::delete(&store, &key, deadline).await })
    }

    fn list_blobs(&self, prefix: String, deadline: Deadline) -> BoxFuture<'static, BlobResult<Vec<BlobKey>>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::list(&store, &prefix, deadline).await })
    }

    fn put_blob_file(
        &self,
        key: BlobKey,
        path: PathBuf,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BoxFuture<'static, BlobResult<()>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::put_file(&store, &key, path, content_type, deadline).await })
    }

    fn get_blob_to_file(&self, key: BlobKey, path: PathBuf, deadline: Deadline) -> BoxFuture<'static, BlobResult<()>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::get_to_file(&store, &key, path, deadline).await })
    }

    fn blob_local_path(&self, key: &BlobKey) -> Option<PathBuf> {
        BlobStore::local_path(self, key)
    }

    fn presigned_blob_url(
        &self,
        key: BlobKey,
        ttl: std::time::Duration,
    ) -> BoxFuture<'static, BlobResult<Option<String>>> {
        let store = self.clone();
        Box::pin(async move { BlobStore::presigned_get(&store, &key, ttl).await })
    }
}

/// The blob store a running Stride uses.
pub type SharedBlobStore = std::sync::Arc<dyn DynBlobStore>;

/// Blobs as files under one directory, for the one-binary install.
///
/// A put writes a temporary file beside the target, fsyncs it, renames it over the target and
/// fsyncs the directory: after a crash the key holds the old bytes or the new ones, never a
/// torn file. File I/O blocks, so each call runs on tokio's blocking pool under the caller's
/// deadline; a call that outlives its deadline still finishes in the background (blocking work
/// cannot be interrupted), which is why cleanup after a failed request deletes every key it
/// tried, and `stride photos gc` removes whatever a crash left.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: std::sync::Arc<PathBuf>,
}

impl LocalBlobStore {
    /// Opens (creating if needed) the store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> BlobResult<Self> {
        let root = root.into();
        let created = root.clone();
        blocking(Deadline::after(std::time::Duration::from_secs(30)), move || std::fs::create_dir_all(&created))
            .await?;
        Ok(Self { root: std::sync::Arc::new(root) })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

impl BlobStore for LocalBlobStore {
    const BACKEND: &'static str = "disk";

    async fn put(
        &self,
        key: &BlobKey,
        bytes: Bytes,
        _content_type: &'static str,
        deadline: Deadline,
    ) -> BlobResult<()> {
        let target = self.path(key);
        blocking(deadline, move || write_atomically(&target, &bytes)).await
    }

    async fn get(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<Bytes> {
        let path = self.path(key);
        blocking(deadline, move || std::fs::read(&path)).await.map(Bytes::from)
    }

    async fn delete(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<()> {
        let path = self.path(key);
        match blocking(deadline, move || std::fs::remove_file(&path)).await {
            Err(BlobError::NotFound) => Ok(()),
            other => other,
        }
    }

    async fn list(&self, prefix: &str, deadline: Deadline) -> BlobResult<Vec<BlobKey>> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(deadline, move || {
            let mut keys = Vec::new();
            collect_keys(&root, &root, &mut keys)?;
            keys.retain(|key: &BlobKey| key.as_str().starts_with(&prefix));
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn put_file(
        &self,
        key: &BlobKey,
        path: PathBuf,
        _content_type: &'static str,
        deadline: Deadline,
    ) -> BlobResult<()> {
        let target = self.path(key);
        blocking(deadline, move || {
            write_atomically_with(&target, |file| std::io::copy(&mut std::fs::File::open(&path)?, file).map(drop))
        })
        .await
    }

    async fn get_to_file(&self, key: &BlobKey, path: PathBuf, deadline: Deadline) -> BlobResult<()> {
        let source = self.path(key);
        blocking(deadline, move || std::fs::copy(&source, &path).map(drop)).await
    }

    fn local_path(&self, key: &BlobKey) -> Option<PathBuf> {
        Some(self.path(key))
    }
}

/// The behaviour every [`BlobStore`] must have; the disk store runs it here and the S3 store in
/// its own tests, so both keep one contract.
#[cfg(any(test, feature = "testing"))]
pub mod contract {
    use super::*;

    fn deadline() -> Deadline {
        Deadline::after(std::time::Duration::from_secs(30))
    }

    /// Runs the whole contract against `store`, using keys under `prefix` only.
    pub async fn check<B: BlobStore>(store: &B, prefix: &str) {
        let key = |name: &str| BlobKey::parse(&format!("{prefix}/{name}")).unwrap();
        let (a, b) = (key("a/one.jpg"), key("b/two.png"));

        assert_eq!(store.get(&a, deadline()).await, Err(BlobError::NotFound), "a missing key");
        store.put(&a, Bytes::from_static(b"first"), "image/jpeg", deadline()).await.unwrap();
        assert_eq!(store.get(&a, deadline()).await.unwrap(), Bytes::from_static(b"first"));
        store.put(&a, Bytes::from_static(b"second"), "image/jpeg", deadline()).await.unwrap();
        assert_eq!(store.get(&a, deadline()).await.unwrap(), Bytes::from_static(b"second"), "a put replaces");

        let big = Bytes::from((0..3_000_000_u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        store.put(&b, big.clone(), "image/png", deadline()).await.unwrap();
        assert_eq!(store.get(&b, deadline()).await.unwrap(), big, "megabytes come back byte for byte");

        assert_eq!(store.list(prefix, deadline()).await.unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(store.list(&format!("{prefix}/b"), deadline()).await.unwrap(), vec![b.clone()]);

        store.delete(&a, deadline()).await.unwrap();
        store.delete(&a, deadline()).await.expect("deleting a missing key succeeds");
        assert_eq!(store.get(&a, deadline()).await, Err(BlobError::NotFound));
        assert_eq!(store.list(prefix, deadline()).await.unwrap(), vec![b.clone()]);

        // Files in and out, streamed: what comes back is the file that went in.
        let dir = tempfile::tempdir().unwrap();
        let (sent, received) = (dir.path().join("sent"), dir.path().join("received"));
        std::fs::write(&sent, &big[..2_500_000]).unwrap();
        let c = key("c/archive.zip");
        store.put_file(&c, sent.clone(), "application/zip", deadline()).await.unwrap();
        store.get_to_file(&c, received.clone(), deadline()).await.unwrap();
        assert_eq!(std::fs::read(&received).unwrap(), &big[..2_500_000], "a file comes back byte for byte");
        if let Some(own) = store.local_path(&c) {
            assert_eq!(std::fs::read(own).unwrap(), &big[..2_500_000], "the local path is the blob's file");
        }
        assert_eq!(
            store.get_to_file(&a, received, deadline()).await,
            Err(BlobError::NotFound),
            "a missing key into a file"
        );
        store.delete(&c, deadline()).await.unwrap();
        store.delete(&b, deadline()).await.unwrap();

        let past = Deadline::after(std::time::Duration::ZERO);
        assert_eq!(store.get(&b, past).await, Err(BlobError::Timeout), "an expired deadline is a timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk_io::classify_io;

    #[test]
    fn keys_cannot_climb_out_of_the_store_or_name_temporary_files() {
        for bad in ["", "/abs", "a//b", "../x", "a/../b", ".hidden", "a/.tmp", "UPPER", "sp ace", "a/b/"] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(BlobKey::parse(&"a".repeat(BlobKey::MAX_LEN + 1)).is_err());
        for good in ["photos/0190a/display.jpg", "originals/u_1/p-2.webp", "x"] {
            assert_eq!(BlobKey::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn only_passing_failures_are_transient() {
        assert!(BlobError::Timeout.is_transient());
        assert!(BlobError::Unavailable("503".into()).is_transient());
        assert!(!BlobError::NotFound.is_transient());
        assert!(!BlobError::Other("403".into()).is_transient());
        assert!(classify_io(std::io::Error::from(std::io::ErrorKind::StorageFull)).is_transient());
        assert!(!classify_io(std::io::Error::from(std::io::ErrorKind::PermissionDenied)).is_transient());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_disk_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path().join("blobs")).await.unwrap();
        contract::check(&store, "photos").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_put_leaves_no_temporary_file_and_never_a_torn_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).await.unwrap();
        let key = BlobKey::parse("p/x.jpg").unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(30));
        // Concurrent puts of different contents: the key ends up holding one of them whole.
        let (one, two) = (Bytes::from(vec![1_u8; 1 << 20]), Bytes::from(vec![2_u8; 1 << 20]));
        let (first, second) = tokio::join!(
            store.put(&key, one.clone(), "image/jpeg", deadline),
            store.put(&key, two.clone(), "image/jpeg", deadline)
        );
        first.unwrap();
        second.unwrap();
        let stored = store.get(&key, deadline).await.unwrap();
        assert!(stored == one || stored == two, "the blob is one put's bytes, whole");
        let names: Vec<String> = std::fs::read_dir(dir.path().join("p"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x.jpg".to_owned()], "no temporary file is left behind");
    }
}
