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

mod deletion;
pub mod process;
mod reprocess;
mod storage;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use stride_domain::{Activity, ActivityId, Photo, PhotoId, PhotoKind, Rendition, UserId};
use stride_repository::{
    ActivityRepo, BlobKey, IdempotencyScope, PhotoRepo, PhotoUploadRecord, RepoError, SharedBlobStore, Store,
    UnitOfWork,
};
use stride_workers::{Deadline, GroupError, RetryPolicy, TaskGroup};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use deletion::DELETE_BLOBS_KIND;
pub(crate) use deletion::delete_blobs_job;
pub use process::{PROCESSING_VERSION, PhotoError, PhotoLimits, Processed};
pub use reprocess::{ReprocessEvent, ReprocessOptions, ReprocessSummary};
pub use storage::Storage;

use crate::cpu::CpuPool;
use crate::idempotency::IDEMPOTENCY_WINDOW;
use crate::uow::finish;
use crate::{Clock, IdempotencyKey, ServiceError, ServiceResult};

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
}

impl<S: Store> PhotoService<S> {
    pub fn new(store: S, blobs: SharedBlobStore, cpu: CpuPool, clock: Arc<dyn Clock>, config: PhotoConfig) -> Self {
        let storage = Storage::new(blobs, config.storage_timeout, config.retry);
        Self { store, storage, cpu, clock, config: Arc::new(config), uploads: TaskTracker::new() }
    }

    pub fn config(&self) -> &PhotoConfig {
        &self.config
    }

    /// Resolves once no upload is running or cleaning up (for shutdown, and for tests that
    /// abandon an upload and then look at what it left).
    pub async fn quiesce(&self) {
        self.uploads.close();
        self.uploads.wait().await;
        self.uploads.reopen();
    }

    /// Whether `owner` may attach photos to the activity: checked before a body is read, so a
    /// stranger's 100 MiB is refused without being received.
    pub async fn check_upload(&self, deadline: Deadline, owner: UserId, activity: ActivityId) -> ServiceResult<()> {
        let mut uow = self.store.read(deadline).await?;
        owned(&mut uow, owner, activity).await.map(drop)
    }

    /// Stores every file as a photo of the activity, or none of them.
    pub async fn upload(
        &self,
        deadline: Deadline,
        owner: UserId,
        activity: ActivityId,
        files: Vec<UploadFile>,
        key: Option<IdempotencyKey>,
    ) -> ServiceResult<Uploaded> {
        self.check_files(&files)?;
        // Hashing every file (up to 100 MiB) is only needed to recognise a retry, and is CPU
        // work: keyed uploads do it on the CPU pool, others not at all.
        let fingerprint = match &key {
            None => Vec::new(),
            Some(_) => {
                let names_and_bytes = files.clone();
                self.cpu.run(move || upload_fingerprint(activity, &names_and_bytes)).await?
            }
        };
        let mut uow = self.store.read(deadline).await?;
        owned(&mut uow, owner, activity).await?;
        if let Some(key) = &key {
            let scope = self.scope(owner, key);
            if let Some(first) = uow.find_photo_upload_key(scope).await? {
                return replay(&mut uow, &fingerprint, first).await;
            }
        }
        drop(uow);
        // Formats and sizes from the headers, for every file, before any pixel is decoded.
        let limits = self.config.limits;
        for file in &files {
            process::check_dimensions(&file.bytes, limits).map_err(|e| file_error(&file.name, e))?;
        }

        // The work runs as its own task so that it can clean up after itself when the caller
        // goes away; the guard cancels it if this future is dropped.
        let cancel = CancellationToken::new();
        let _stop_if_abandoned = cancel.clone().drop_guard();
        let this = self.clone();
        let work = self.uploads.spawn(async move {
            let request = UploadRequest { owner, activity, files, key, fingerprint };
            this.store_and_record(deadline, request, cancel).await
        });
        work.await.unwrap_or_else(|e| Err(ServiceError::Internal(format!("upload task failed: {e}"))))
    }

    fn check_files(&self, files: &[UploadFile]) -> ServiceResult<()> {
        if files.is_empty() {
            return Err(ServiceError::Invalid { field: "photo", message: "at least one file is required".into() });
        }
        if files.len() > self.config.max_files {
            return Err(ServiceError::Invalid {
                field: "photo",
                message: format!("at most {} files per upload, got {}", self.config.max_files, files.len()),
            });
        }
        for file in files {
            if file.bytes.len() as u64 > self.config.max_file_bytes {
                return Err(ServiceError::TooLarge(format!(
                    "{}: larger than {} bytes",
                    file.name, self.config.max_file_bytes
                )));
            }
            if process::sniff(&file.bytes).is_none() {
                return Err(ServiceError::UnsupportedMedia(format!("{}: not a JPEG, PNG or WebP image", file.name)));
            }
        }
        Ok(())
    }

    fn scope<'k>(&self, owner: UserId, key: &'k IdempotencyKey) -> IdempotencyScope<'k> {
        IdempotencyScope { user: owner, key: key.as_str(), not_before: self.clock.now() - IDEMPOTENCY_WINDOW }
    }

    async fn store_and_record(
        &self,
        deadline: Deadline,
        request: UploadRequest,
        cancel: CancellationToken,
    ) -> ServiceResult<Uploaded> {
        let stored = StoredBlobs::default();
        let attempts = TaskTracker::new();
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ServiceError::Unavailable("the client went away".into())),
            outcome = self.store_all(deadline, &request, &stored, &attempts) => outcome,
        };
        let outcome: ServiceResult<Uploaded> = match outcome {
            Ok(photos) if !cancel.is_cancelled() => match self.record(deadline, &request, photos).await {
                Recorded::Done(uploaded) => return Ok(uploaded),
                // The commit's outcome is unknown: the rows may exist, so the blobs stay (gc
                // removes them if the rows do not).
                Recorded::Unknown(error) => return Err(error),
                Recorded::NotWritten(error) => Err(error),
                Recorded::LostTo(first) => Ok(first),
            },
            Ok(_) => Err(ServiceError::Unavailable("the client went away".into())),
            Err(error) => Err(error),
        };
        // Every storage call this upload started ends before its blobs are deleted.
        attempts.close();
        attempts.wait().await;
        let keys = stored.take();
        let failed = self.storage.delete_all(&keys, Deadline::after(self.config.storage_timeout * 3)).await;
        tracing::info!(blobs = keys.len(), failed, "upload failed; removed what it had stored");
        outcome
    }

    /// Processes and stores every file; the first failure cancels the rest.
    async fn store_all(
        &self,
        deadline: Deadline,
        request: &UploadRequest,
        stored: &StoredBlobs,
        attempts: &TaskTracker,
    ) -> ServiceResult<Vec<Photo>> {
        let now = self.clock.now();
        let mut group = TaskGroup::with_limit(self.config.per_request);
        let results: Arc<stride_workers::sync::Mutex<Vec<Option<Photo>>>> =
            Arc::new(stride_workers::sync::Mutex::new(vec![None; request.files.len()]));
        for (index, file) in request.files.iter().enumerate() {
            let (this, file, stored, attempts, results) =
                (self.clone(), file.clone(), stored.clone(), attempts.clone(), results.clone());
            let (owner, activity) = (request.owner, request.activity);
            group.spawn(move |cancel| async move {
                let photo = this
                    .store_one(deadline, owner, activity, &file, now, &stored, &attempts, &cancel)
                    .await
                    .map_err(|e| name_the_file(&file.name, e))?;
                results.lock()[index] = Some(photo);
                Ok(())
            });
        }
        deadline.run(group.wait()).await?.map_err(|e| match e {
            GroupError::Failed(error) => error,
            GroupError::Panicked(why) => ServiceError::Internal(format!("photo processing panicked: {why}")),
        })?;
        let photos = std::mem::take(&mut *results.lock());
        photos.into_iter().map(|p| p.ok_or_else(|| ServiceError::Internal("a photo went missing".into()))).collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_one(
        &self,
        deadline: Deadline,
        owner: UserId,
        activity: ActivityId,
        file: &UploadFile,
        now: chrono::DateTime<chrono::Utc>,
        stored: &StoredBlobs,
        attempts: &TaskTracker,
        cancel: &CancellationToken,
    ) -> ServiceResult<Photo> {
        let limits = self.config.limits;
        let bytes = file.bytes.clone();
        // The digest of up to 25 MiB is CPU work too: it runs in the same slot, not on an
        // async worker.
        let (processed, sha256) =
            self.cpu.run(move || (process::process(&bytes, limits), Sha256::digest(&bytes).into())).await?;
        let processed = processed.map_err(|e| file_error("", e))?;
        let original = (file.bytes.len() as u64, sha256);
        let photo = photo_from(PhotoId::new(), owner, activity, original, &processed, now);
        let puts = [
            (PhotoKind::Original, file.bytes.clone()),
            (PhotoKind::Display, processed.display.bytes.clone()),
            (PhotoKind::Thumb, processed.thumb.bytes.clone()),
        ];
        let puts = puts.into_iter().map(|(kind, bytes)| {
            let key = blob_key(&photo, kind);
            let content_type = photo.rendition(kind).format.content_type();
            async move {
                let key = key?;
                stored.push(key.clone());
                self.storage.put(&key, bytes, content_type, deadline, cancel, attempts).await
            }
        });
        futures::future::try_join_all(puts).await?;
        Ok(photo)
    }

    /// Writes the rows (and the idempotency record) in one commit.
    async fn record(&self, deadline: Deadline, request: &UploadRequest, mut photos: Vec<Photo>) -> Recorded {
        let mut uow = match self.store.write(deadline).await {
            Ok(uow) => uow,
            Err(error) => return Recorded::NotWritten(error.into()),
        };
        let outcome = async {
            owned_for_update(&mut uow, request.owner, request.activity).await?;
            let first = uow.next_photo_position(request.activity).await?;
            for (offset, photo) in photos.iter_mut().enumerate() {
                photo.position = first + offset as u32;
                uow.insert_photo(photo).await?;
            }
            if let Some(key) = &request.key {
                let record = PhotoUploadRecord {
                    fingerprint: request.fingerprint.clone(),
                    activity_id: request.activity,
                    photo_ids: photos.iter().map(|p| p.id).collect(),
                };
                match uow.record_photo_upload_key(self.scope(request.owner, key), &record, self.clock.now()).await {
                    Ok(()) => {}
                    Err(RepoError::Conflict { .. }) => return Ok(None),
                    Err(other) => return Err(ServiceError::from(other)),
                }
            }
            Ok(Some(()))
        }
        .await;
        match outcome {
            Ok(Some(())) => match uow.commit().await {
                Ok(()) => Recorded::Done(Uploaded::New(photos)),
                Err(error) => Recorded::Unknown(error.into()),
            },
            Ok(None) => {
                // A concurrent retry with the same key committed first: answer with its photos;
                // ours are removed by the caller.
                let _ = uow.rollback().await;
                let key = request.key.as_ref().expect("only a keyed upload can lose the race");
                let replayed = async {
                    let mut uow = self.store.read(deadline).await?;
                    let first = uow
                        .find_photo_upload_key(self.scope(request.owner, key))
                        .await?
                        .ok_or_else(|| ServiceError::Internal("upload key vanished after a conflict".into()))?;
                    replay(&mut uow, &request.fingerprint, first).await
                }
                .await;
                match replayed {
                    Ok(first) => Recorded::LostTo(first),
                    Err(error) => Recorded::NotWritten(error),
                }
            }
            Err(error) => Recorded::NotWritten(finish(uow, Err::<(), _>(error)).await.unwrap_err()),
        }
    }

    /// An activity's photos by position, if the viewer may see the activity.
    pub async fn list(&self, deadline: Deadline, viewer: UserId, activity: ActivityId) -> ServiceResult<Vec<Photo>> {
        let mut uow = self.store.read(deadline).await?;
        visible(&mut uow, viewer, activity).await?;
        Ok(uow.photos_of_activity(activity).await?)
    }

    /// A photo the viewer may see (`Original`: only its owner).
    pub async fn photo(
        &self,
        deadline: Deadline,
        viewer: UserId,
        id: PhotoId,
        kind: PhotoKind,
    ) -> ServiceResult<Photo> {
        let mut uow = self.store.read(deadline).await?;
        let photo = uow.photo_by_id(id).await?.ok_or(ServiceError::NotFound)?;
        if kind == PhotoKind::Original && photo.user_id != viewer {
            return Err(ServiceError::NotFound);
        }
        visible(&mut uow, viewer, photo.activity_id).await?;
        Ok(photo)
    }

    /// The bytes (or a presigned URL, if `delivery` allows) of one rendition of a photo the
    /// caller may see.
    pub async fn serve(
        &self,
        deadline: Deadline,
        photo: &Photo,
        kind: PhotoKind,
        delivery: Delivery,
    ) -> ServiceResult<Served> {
        let key = blob_key(photo, kind)?;
        if kind != PhotoKind::Original
            && delivery == Delivery::RedirectWhenPresigned
            && let Some(ttl) = self.config.presign_ttl
            && let Some(url) = self.storage.presigned_get(&key, ttl).await?
        {
            return Ok(Served::Redirect(url));
        }
        match self.storage.get(&key, deadline).await {
            Ok(bytes) => Ok(Served::Bytes(bytes)),
            Err(ServiceError::NotFound) => Err(ServiceError::Internal(format!("photo {} has no blob {key}", photo.id))),
            Err(other) => Err(other),
        }
    }
}

struct UploadRequest {
    owner: UserId,
    activity: ActivityId,
    files: Vec<UploadFile>,
    key: Option<IdempotencyKey>,
    fingerprint: Vec<u8>,
}

enum Recorded {
    Done(Uploaded),
    /// A concurrent retry with the same key committed first: its photos are the answer, and
    /// this upload's blobs are removed.
    LostTo(Uploaded),
    NotWritten(ServiceError),
    Unknown(ServiceError),
}

/// Every key an upload has started to write, so a failed one can delete them all.
#[derive(Clone, Default)]
struct StoredBlobs(Arc<stride_workers::sync::Mutex<Vec<BlobKey>>>);

impl StoredBlobs {
    fn push(&self, key: BlobKey) {
        self.0.lock().push(key);
    }

    fn take(&self) -> Vec<BlobKey> {
        std::mem::take(&mut *self.0.lock())
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

/// What identifies an upload across retries: the activity and each file's name, size and
/// SHA-256 (a retry's multipart boundary differs, so the raw body cannot be compared).
fn upload_fingerprint(activity: ActivityId, files: &[UploadFile]) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(activity.as_uuid().as_bytes());
    for file in files {
        digest.update((file.name.len() as u64).to_le_bytes());
        digest.update(file.name.as_bytes());
        digest.update((file.bytes.len() as u64).to_le_bytes());
        digest.update(Sha256::digest(&file.bytes));
    }
    digest.finalize().to_vec()
}

async fn replay<U: PhotoRepo>(uow: &mut U, fingerprint: &[u8], first: PhotoUploadRecord) -> ServiceResult<Uploaded> {
    if first.fingerprint != fingerprint {
        return Err(ServiceError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was already used for a different upload".into(),
        });
    }
    let mut photos = Vec::with_capacity(first.photo_ids.len());
    for id in first.photo_ids {
        if let Some(photo) = uow.photo_by_id(id).await? {
            photos.push(photo);
        }
    }
    Ok(Uploaded::Replayed(photos))
}

async fn owned<U: ActivityRepo>(uow: &mut U, owner: UserId, id: ActivityId) -> ServiceResult<Activity> {
    let activity = uow.activity_by_id(id).await?.ok_or(ServiceError::NotFound)?;
    if crate::access::may_modify(owner, activity.user_id) { Ok(activity) } else { Err(ServiceError::NotFound) }
}

async fn owned_for_update<U: ActivityRepo>(uow: &mut U, owner: UserId, id: ActivityId) -> ServiceResult<Activity> {
    let activity = uow.activity_by_id_for_update(id).await?.ok_or(ServiceError::NotFound)?;
    if crate::access::may_modify(owner, activity.user_id) { Ok(activity) } else { Err(ServiceError::NotFound) }
}

async fn visible<U: ActivityRepo + stride_repository::SocialRepo>(
    uow: &mut U,
    viewer: UserId,
    id: ActivityId,
) -> ServiceResult<Activity> {
    crate::access::visible_activity(uow, viewer, id).await
}

/// A file that cannot become a photo: 415 for a format we do not take, 422 otherwise, the
/// message naming the file.
fn file_error(name: &str, error: PhotoError) -> ServiceError {
    let prefix = if name.is_empty() { String::new() } else { format!("{name}: ") };
    match error {
        PhotoError::Unsupported => ServiceError::UnsupportedMedia(format!("{prefix}{error}")),
        PhotoError::TooLarge { .. } | PhotoError::Corrupt(_) => {
            ServiceError::Invalid { field: "photo", message: format!("{prefix}{error}") }
        }
    }
}

/// Puts the file's name in front of an error that does not carry it yet.
fn name_the_file(name: &str, error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Invalid { field, message } => {
            ServiceError::Invalid { field, message: format!("{name}: {message}") }
        }
        ServiceError::UnsupportedMedia(message) => ServiceError::UnsupportedMedia(format!("{name}: {message}")),
        ServiceError::StorageUnavailable(why) => ServiceError::StorageUnavailable(format!("{name}: {why}")),
        other => other,
    }
}
