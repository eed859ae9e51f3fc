//! Photos: upload (all or nothing), list, serve, delete, and batch re-processing.
//!
//! The upload path is where the toolkit does its real work:
//! - the files of one request are processed by a [`TaskGroup`] of at most
//!   [`PhotoConfig::per_request`] tasks, whose first failure cancels the rest;
//! - their CPU work runs on one [`CpuPool`] shared by every request (a semaphore sized to the
//!   cores in front of `spawn_blocking`), so ten concurrent uploads never mean fifty decodes;
//! - every blob call goes through [`Storage`]: its own deadline, the toolkit's `retry` with
//!   backoff and full jitter, metrics;
//! - the whole upload runs as a task of its own, tied to the caller by a drop guard: when the
//!   client goes away, the upload stops, waits for the storage calls already running, deletes
//!   every blob it stored and writes no row. Nothing is half-stored, whoever gives up.
//!
//! Blobs and rows cannot share a transaction, so the order is fixed: blobs first, then the
//! rows in one commit; on delete the rows first, then the blobs. A crash in between leaves
//! blobs no row names, which `stride photos gc` ([`PhotoService::collect_garbage`]) removes.

mod admission;
mod deletion;
mod imported;
mod reprocess;
mod serving;
pub(crate) mod storage;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use stride_concurrency::RetryPolicy;
use stride_domain::{Activity, ActivityId, Photo, PhotoId, PhotoKind, Rendition, UserId};
use stride_repository::{ActivityRepo, BlobKey, SharedBlobStore, Store};
use tokio_util::task::TaskTracker;

pub use admission::UploadAdmission;
pub use deletion::DELETE_BLOBS_KIND;
pub(crate) use deletion::{delete_blobs_job, delete_keys_job};
pub use reprocess::{ReprocessEvent, ReprocessOptions, ReprocessSummary};
pub use storage::Storage;
/// The CPU work of one photo, in a crate of its own (`stride-imaging`).
pub use stride_imaging as process;
pub use stride_imaging::{PROCESSING_VERSION, PhotoError, PhotoLimits, Processed};

use crate::cpu::CpuPool;
use crate::{Clock, ServiceError, ServiceResult};

/// Knobs of the photo use cases.
#[derive(Debug, Clone)]
pub struct PhotoConfig {
    /// Files of one request processed at once.
    pub per_request: usize,
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub limits: PhotoLimits,
    /// Each storage call's own deadline (`STRIDE_S3_TIMEOUT_MS`), inside the request's.
    pub storage_timeout: Duration,
    pub retry: RetryPolicy,
    /// When set and the store can mint them, display and thumbnail GETs answer 302 to a
    /// presigned URL valid this long instead of streaming the bytes.
    pub presign_ttl: Option<Duration>,
    /// Blobs of photo ids minted more recently than this are never garbage: their upload may
    /// still be running (it must exceed the longest upload deadline).
    pub gc_grace: Duration,
    /// Photo uploads one user may have in flight at once (429 past it).
    pub uploads_per_user: u32,
    /// Upload body bytes all requests together may hold in memory (`STRIDE_UPLOAD_MEMORY_BYTES`).
    pub upload_memory_bytes: u64,
    /// Decoded pixels all files together may hold (`STRIDE_DECODE_MEMORY_BYTES`).
    pub decode_memory_bytes: u64,
    /// How long an upload or a decode waits for memory before the answer is 503.
    pub memory_wait: Duration,
    /// The bytes one user's photos may take in the blob store, every rendition counted
    /// (`STRIDE_USER_STORAGE_BYTES`; 413 `quota_exceeded` past it).
    pub user_storage_bytes: u64,
}

impl Default for PhotoConfig {
    fn default() -> Self {
        Self {
            per_request: 5,
            max_files: 10,
            max_file_bytes: 25 * 1024 * 1024,
            limits: PhotoLimits::default(),
            storage_timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
                max_attempts: 4,
                max_elapsed: Duration::from_secs(30),
            },
            presign_ttl: None,
            gc_grace: Duration::from_secs(60 * 60),
            uploads_per_user: 2,
            upload_memory_bytes: 256 << 20,
            decode_memory_bytes: 512 << 20,
            memory_wait: Duration::from_secs(5),
            user_storage_bytes: 5 << 30,
        }
    }
}

/// One uploaded file, as the client named it.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub name: String,
    pub bytes: Bytes,
}

impl UploadFile {
    pub fn new(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self { name: name.into(), bytes: bytes.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Uploaded {
    New(Vec<Photo>),
    /// A retry with the same `Idempotency-Key`: the photos the first upload made (those not
    /// deleted since).
    Replayed(Vec<Photo>),
}

impl Uploaded {
    pub fn photos(&self) -> &[Photo] {
        match self {
            Uploaded::New(photos) | Uploaded::Replayed(photos) => photos,
        }
    }
}

/// How a client may receive a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A presigned URL when the store offers one (the API: the bytes then bypass the server).
    RedirectWhenPresigned,
    /// Always the bytes, through the server: the web app's pages, whose CSP allows images from
    /// their own origin only, and whose cookie a presigned S3 URL would not need anyway.
    Bytes,
}

/// How a rendition is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Served {
    Bytes(Bytes),
    /// A short-lived URL serving the same bytes (S3 presigned GET).
    Redirect(String),
}

#[derive(Clone)]
pub struct PhotoService<S> {
    store: S,
    storage: Storage,
    cpu: CpuPool,
    clock: Arc<dyn Clock>,
    config: Arc<PhotoConfig>,
    /// Every upload still running or cleaning up; shutdown waits for them.
    uploads: TaskTracker,
    budgets: admission::Budgets,
}

impl<S: Store> PhotoService<S> {
    pub fn new(store: S, blobs: SharedBlobStore, cpu: CpuPool, clock: Arc<dyn Clock>, config: PhotoConfig) -> Self {
        let storage = Storage::new(blobs, config.storage_timeout, config.retry);
        let budgets = admission::Budgets::new(
            config.uploads_per_user,
            config.upload_memory_bytes,
            config.decode_memory_bytes,
            config.memory_wait,
        );
        Self { store, storage, cpu, clock, config: Arc::new(config), uploads: TaskTracker::new(), budgets }
    }

    pub fn config(&self) -> &PhotoConfig {
        &self.config
    }

    /// One of `owner`'s upload slots, to hold while the body is read and the upload runs
    /// (429 when they have as many in flight as allowed); its body bytes are held through it.
    pub fn admit_upload(&self, owner: UserId) -> ServiceResult<UploadAdmission> {
        self.budgets.admit(owner)
    }

    /// Resolves once no upload is running or cleaning up (for shutdown, and for tests that
    /// abandon an upload and then look at what it left).
    pub async fn quiesce(&self) {
        self.uploads.close();
        self.uploads.wait().await;
        self.uploads.reopen();
    }
}

/// Every blob of these photos.
pub(crate) fn blob_keys(photos: &[Photo]) -> Vec<BlobKey> {
    photos
        .iter()
        .flat_map(|photo| [PhotoKind::Original, PhotoKind::Display, PhotoKind::Thumb].map(|k| blob_key(photo, k)))
        .filter_map(Result::ok)
        .collect()
}

pub(crate) fn blob_key(photo: &Photo, kind: PhotoKind) -> ServiceResult<BlobKey> {
    BlobKey::parse(&photo.blob_name(kind)).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A photo row for freshly processed outputs.
pub(crate) fn photo_from(
    id: PhotoId,
    owner: UserId,
    activity: ActivityId,
    (original_bytes, sha256): (u64, [u8; 32]),
    processed: &Processed,
    now: chrono::DateTime<chrono::Utc>,
) -> Photo {
    let rendition = |e: &process::Encoded| Rendition {
        format: e.format,
        width: e.width,
        height: e.height,
        bytes: e.bytes.len() as u64,
    };
    Photo {
        id,
        activity_id: activity,
        user_id: owner,
        position: 0,
        width: processed.width,
        height: processed.height,
        original: Rendition {
            format: processed.format,
            width: processed.width,
            height: processed.height,
            bytes: original_bytes,
        },
        display: rendition(&processed.display),
        thumb: rendition(&processed.thumb),
        sha256,
        processing_version: PROCESSING_VERSION,
        created_at: chrono::SubsecRound::trunc_subsecs(now, 6),
    }
}

async fn owned<U: ActivityRepo>(uow: &mut U, owner: UserId, id: ActivityId) -> ServiceResult<Activity> {
    let activity = uow.activity_by_id(id).await?.ok_or(ServiceError::NotFound)?;
    if crate::access::may_modify(owner, activity.user_id) { Ok(activity) } else { Err(ServiceError::NotFound) }
}

async fn owned_for_update<U: ActivityRepo>(uow: &mut U, owner: UserId, id: ActivityId) -> ServiceResult<Activity> {
    let activity = uow.activity_by_id_for_update(id).await?.ok_or(ServiceError::NotFound)?;
    if crate::access::may_modify(owner, activity.user_id) { Ok(activity) } else { Err(ServiceError::NotFound) }
}

async fn visible<U: ActivityRepo + stride_repository::RelationshipRepo>(
    uow: &mut U,
    viewer: UserId,
    id: ActivityId,
) -> ServiceResult<Activity> {
    crate::access::visible_activity(uow, viewer, id).await
}
