//! A [`BlobStore`] that misbehaves on purpose, wrapping a real one: slow calls, the first N
//! calls failing, one chosen put failing. The tests of retries, deadlines and all-or-nothing
//! cleanup run it around both the disk and the S3 store (`testing` feature).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use stride_concurrency::Deadline;
use tokio::sync::Notify;

use crate::{BlobError, BlobKey, BlobResult, BlobStore};

#[derive(Debug, Default)]
struct Faults {
    /// Every call sleeps this many microseconds first (inside its deadline).
    delay_micros: AtomicU64,
    /// This many calls, from now on, fail with a transient error.
    failing_calls: AtomicU32,
    /// The put with this number (counting from 1) fails permanently; 0 for none.
    failing_put: AtomicU32,
    /// Puts numbered from this one on (counting from 1; 0 for none) are held until
    /// [`FaultyBlobStore::release_puts`], after the earlier ones have been stored.
    held_from: AtomicU32,
    release: Notify,
    released: std::sync::atomic::AtomicBool,
    puts: AtomicU32,
    /// Puts that reached the inner store and returned.
    stored: AtomicU32,
    calls: AtomicU32,
    put_started: Notify,
    put_stored: Notify,
}

#[derive(Debug, Clone)]
pub struct FaultyBlobStore<B> {
    inner: B,
    faults: Arc<Faults>,
}

impl<B: BlobStore> FaultyBlobStore<B> {
    pub fn new(inner: B) -> Self {
        Self { inner, faults: Arc::default() }
    }

    /// Every call from now on takes `delay` longer.
    pub fn slow_down(&self, delay: Duration) {
        self.faults.delay_micros.store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The next `calls` calls fail with a transient error.
    pub fn fail_next(&self, calls: u32) {
        self.faults.failing_calls.store(calls, Ordering::SeqCst);
    }

    /// The `n`-th put from the start (counting from 1) fails permanently.
    pub fn fail_put_number(&self, n: u32) {
        self.faults.failing_put.store(n, Ordering::SeqCst);
    }

    /// Puts from the `n`-th on (counting from 1) wait until [`release_puts`](Self::release_puts)
    /// or their deadline: an upload can be caught with some blobs stored and others not.
    pub fn hold_puts_from(&self, n: u32) {
        self.faults.released.store(false, Ordering::SeqCst);
        self.faults.held_from.store(n, Ordering::SeqCst);
    }

    pub fn release_puts(&self) {
        self.faults.released.store(true, Ordering::SeqCst);
        self.faults.release.notify_waiters();
    }

    /// Resolves once at least `n` puts have been stored by the inner store.
    pub async fn puts_stored(&self, n: u32) {
        loop {
            let notified = self.faults.put_stored.notified();
            if self.faults.stored.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }

    pub fn calls(&self) -> u32 {
        self.faults.calls.load(Ordering::SeqCst)
    }

    pub fn puts(&self) -> u32 {
        self.faults.puts.load(Ordering::SeqCst)
    }

    /// Resolves once at least `n` puts have started.
    pub async fn puts_started(&self, n: u32) {
        loop {
            let notified = self.faults.put_started.notified();
            if self.puts() >= n {
                return;
            }
            notified.await;
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn before_call(&self, deadline: Deadline) -> BlobResult<()> {
        self.faults.calls.fetch_add(1, Ordering::SeqCst);
        let delay = Duration::from_micros(self.faults.delay_micros.load(Ordering::SeqCst));
        if !delay.is_zero() {
            deadline.run(tokio::time::sleep(delay)).await.map_err(|_| BlobError::Timeout)?;
        }
        let failing = self.faults.failing_calls.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(BlobError::Unavailable("injected transient failure".into()));
        }
        Ok(())
    }
}

impl<B: BlobStore> BlobStore for FaultyBlobStore<B> {
    const BACKEND: &'static str = B::BACKEND;

    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &'static str, deadline: Deadline) -> BlobResult<()> {
        let number = self.faults.puts.fetch_add(1, Ordering::SeqCst) + 1;
        self.faults.put_started.notify_waiters();
        self.before_call(deadline).await?;
        if self.faults.failing_put.load(Ordering::SeqCst) == number {
            return Err(BlobError::Other(format!("injected permanent failure of put #{number}")));
        }
        let held_from = self.faults.held_from.load(Ordering::SeqCst);
        if held_from != 0 && number >= held_from {
            loop {
                let released = self.faults.release.notified();
                if self.faults.released.load(Ordering::SeqCst) {
                    break;
                }
                deadline.run(released).await.map_err(|_| BlobError::Timeout)?;
            }
        }
        let stored = self.inner.put(key, bytes, content_type, deadline).await;
        if stored.is_ok() {
            self.faults.stored.fetch_add(1, Ordering::SeqCst);
            self.faults.put_stored.notify_waiters();
        }
        stored
    }

    async fn get(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<Bytes> {
        self.before_call(deadline).await?;
        self.inner.get(key, deadline).await
    }

    async fn delete(&self, key: &BlobKey, deadline: Deadline) -> BlobResult<()> {
        self.before_call(deadline).await?;
        self.inner.delete(key, deadline).await
    }

    async fn list(&self, prefix: &str, deadline: Deadline) -> BlobResult<Vec<BlobKey>> {
        self.before_call(deadline).await?;
        self.inner.list(prefix, deadline).await
    }

    async fn put_file(
        &self,
        key: &BlobKey,
        path: std::path::PathBuf,
        content_type: &'static str,
        deadline: Deadline,
    ) -> BlobResult<()> {
        self.before_call(deadline).await?;
        self.inner.put_file(key, path, content_type, deadline).await
    }

    async fn get_to_file(&self, key: &BlobKey, path: std::path::PathBuf, deadline: Deadline) -> BlobResult<()> {
        self.before_call(deadline).await?;
        self.inner.get_to_file(key, path, deadline).await
    }

    fn local_path(&self, key: &BlobKey) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }

    async fn presigned_get(&self, key: &BlobKey, ttl: Duration) -> BlobResult<Option<String>> {
        self.inner.presigned_get(key, ttl).await
    }
}
