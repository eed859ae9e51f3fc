//! Every blob call the services make, with its own deadline, its retries and its metrics.
//!
//! A call gets `STRIDE_S3_TIMEOUT_MS` (or what is left of the caller's deadline, if less);
//! a transient failure (timeout, 5xx, throttling, reset) is retried by the toolkit's
//! [`retry`] with exponential backoff and full jitter, within the caller's budget. What is
//! still failing then becomes [`ServiceError::StorageUnavailable`] (503 naming storage), or
//! [`ServiceError::Timeout`] once the caller's own deadline has passed.
//!
//! Each attempt runs as a task of its own on the caller's [`TaskTracker`]: an attempt that
//! the caller stops waiting for (its upload was cancelled) still runs to its end, and whoever
//! cleans up waits for the tracker first, so no put can land after the delete meant for it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use stride_concurrency::{Deadline, RetryError, RetryPolicy, retry};
use stride_repository::{BlobError, BlobKey, SharedBlobStore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{ServiceError, ServiceResult};

#[derive(Clone)]
pub struct Storage {
    blobs: SharedBlobStore,
    call_timeout: Duration,
    retry: RetryPolicy,
}

impl Storage {
    pub fn new(blobs: SharedBlobStore, call_timeout: Duration, retry: RetryPolicy) -> Self {
        Self { blobs, call_timeout, retry }
    }

    pub fn backend(&self) -> &'static str {
        self.blobs.backend()
    }

    pub async fn put(
        &self,
        key: &BlobKey,
        bytes: Bytes,
        content_type: &'static str,
        deadline: Deadline,
        cancel: &CancellationToken,
        attempts: &TaskTracker,
    ) -> ServiceResult<()> {
        self.call("put", deadline, cancel, attempts, |blobs, call_deadline| {
            blobs.put_blob(key.clone(), bytes.clone(), content_type, call_deadline)
        })
        .await
    }

    pub async fn get(&self, key: &BlobKey, deadline: Deadline) -> ServiceResult<Bytes> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        self.call("get", deadline, &cancel, &attempts, |blobs, d| blobs.get_blob(key.clone(), d)).await
    }

    pub async fn delete(&self, key: &BlobKey, deadline: Deadline) -> ServiceResult<()> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        self.call("delete", deadline, &cancel, &attempts, |blobs, d| blobs.delete_blob(key.clone(), d)).await
    }

    pub async fn list(&self, prefix: &str, deadline: Deadline) -> ServiceResult<Vec<BlobKey>> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        self.call("list", deadline, &cancel, &attempts, |blobs, d| blobs.list_blobs(prefix.to_owned(), d)).await
    }

    /// Stores a local file, streamed (an archive): retried like any call, but each attempt
    /// may take the whole deadline, since a gigabyte does not move within one call's timeout.
    pub async fn put_file(&self, key: &BlobKey, path: &std::path::Path, deadline: Deadline) -> ServiceResult<()> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        let path = path.to_path_buf();
        self.call_within("put_file", deadline, deadline.remaining(), &cancel, &attempts, |blobs, d| {
            blobs.put_blob_file(key.clone(), path.clone(), "application/zip", d)
        })
        .await
    }

    /// Copies a blob into a local file, streamed, as [`Storage::put_file`] stores one.
    pub async fn get_to_file(&self, key: &BlobKey, path: &std::path::Path, deadline: Deadline) -> ServiceResult<()> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        let path = path.to_path_buf();
        self.call_within("get_to_file", deadline, deadline.remaining(), &cancel, &attempts, |blobs, d| {
            blobs.get_blob_to_file(key.clone(), path.clone(), d)
        })
        .await
    }

    /// The blob's own file when the store keeps files (read in place).
    pub fn local_path(&self, key: &BlobKey) -> Option<std::path::PathBuf> {
        self.blobs.blob_local_path(key)
    }

    /// A short-lived URL serving `key` directly, when the backend has them.
    pub async fn presigned_get(&self, key: &BlobKey, ttl: Duration) -> ServiceResult<Option<String>> {
        self.blobs
            .presigned_blob_url(key.clone(), ttl)
            .await
            .map_err(|e| ServiceError::StorageUnavailable(e.to_string()))
    }

    /// What a garbage collector ends with: deletes `garbage` unless it is a dry run, and fails
    /// (503 naming storage) when some of it could not be deleted.
    pub async fn delete_garbage(&self, garbage: &[BlobKey], dry_run: bool, deadline: Deadline) -> ServiceResult<()> {
        if dry_run {
            return Ok(());
        }
        match self.delete_all(garbage, deadline).await {
            0 => Ok(()),
            failed => Err(ServiceError::StorageUnavailable(format!("{failed} garbage blobs could not be deleted"))),
        }
    }

    /// Deletes every key, each with its retries, all at once; what still fails is logged and
    /// left to `stride photos gc`. Used after a failed upload and after a committed delete.
    pub async fn delete_all(&self, keys: &[BlobKey], deadline: Deadline) -> usize {
        let results = futures::future::join_all(keys.iter().map(|key| self.delete(key, deadline))).await;
        let mut failed = 0;
        for (key, result) in keys.iter().zip(results) {
            if let Err(error) = result {
                failed += 1;
                tracing::warn!(%key, %error, "could not delete a blob; `stride photos gc` will");
            }
        }
        failed
    }

    async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        deadline: Deadline,
        cancel: &CancellationToken,
        attempts: &TaskTracker,
        start: impl Fn(&SharedBlobStore, Deadline) -> BoxFuture<'static, Result<T, BlobError>>,
    ) -> ServiceResult<T> {
        self.call_within(operation, deadline, self.call_timeout, cancel, attempts, start).await
    }

    async fn call_within<T: Send + 'static>(
        &self,
        operation: &'static str,
        deadline: Deadline,
        call_timeout: Duration,
        cancel: &CancellationToken,
        attempts: &TaskTracker,
        start: impl Fn(&SharedBlobStore, Deadline) -> BoxFuture<'static, Result<T, BlobError>>,
    ) -> ServiceResult<T> {
        let backend = self.blobs.backend();
        let policy = RetryPolicy { max_elapsed: deadline.remaining(), ..self.retry };
        let outcome = retry(&policy, cancel, BlobError::is_transient, |attempt| {
            if attempt > 1 {
                metrics::counter!("storage_retries_total", "backend" => backend, "operation" => operation).increment(1);
            }
            let call = start(&self.blobs, deadline.tightened_by(call_timeout));
            let running = attempts.spawn(async move {
                let started = Instant::now();
                let result = call.await;
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(BlobError::NotFound) => "not_found",
                    Err(BlobError::Timeout) => "timeout",
                    Err(BlobError::Unavailable(_)) => "unavailable",
                    Err(BlobError::Other(_)) => "error",
                };
                metrics::counter!("storage_calls_total", "backend" => backend, "operation" => operation, "outcome" => outcome)
                    .increment(1);
                metrics::histogram!("storage_call_seconds", "backend" => backend, "operation" => operation)
                    .record(started.elapsed().as_secs_f64());
                result
            });
            async move { running.await.unwrap_or_else(|e| Err(BlobError::Other(format!("storage call panicked: {e}")))) }
        })
        .await;
        outcome.map_err(|error| match error {
            RetryError::Permanent(BlobError::NotFound) => ServiceError::NotFound,
            RetryError::Cancelled => ServiceError::Unavailable("the upload was cancelled".into()),
            _ if deadline.is_expired() => ServiceError::Timeout,
            RetryError::Permanent(error) => ServiceError::StorageUnavailable(format!("{backend} {operation}: {error}")),
            RetryError::Exhausted { attempts, last } => {
                ServiceError::StorageUnavailable(format!("{backend} {operation}: {last} ({attempts} attempts)"))
            }
            RetryError::OutOfTime { attempts } => {
                ServiceError::StorageUnavailable(format!("{backend} {operation}: out of time ({attempts} attempts)"))
            }
        })
    }
}
