//! The upload: every file of a request processed by a task group on the shared CPU pool, its
//! blobs stored with retries, then its rows written in one commit — or nothing at all.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use stride_concurrency::{Deadline, GroupError, TaskGroup};
use stride_domain::{ActivityId, Photo, PhotoId, PhotoKind, UserId};
use stride_repository::{BlobKey, IdempotencyScope, PhotoRepo, PhotoUploadRecord, RepoError, Store, UnitOfWork};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::idempotency::IDEMPOTENCY_WINDOW;
use crate::uow::finish;
use crate::{IdempotencyKey, ServiceError, ServiceResult};

use super::{PhotoError, PhotoService, UploadFile, Uploaded, blob_key, owned, owned_for_update, photo_from, process};

impl<S: Store> PhotoService<S> {
    /// Whether `owner` may attach photos to the activity: checked before a body is read, so a
    /// stranger's 100 MiB is refused without being received.
    pub async fn check_upload(&self, deadline: Deadline, owner: UserId, activity: ActivityId) -> ServiceResult<()> {
        let mut uow = self.store.read(deadline).await?;
        owned(&mut uow, owner, activity).await?;
        self.within_quota(&mut uow, owner, 1).await
    }

    /// Refuses (413 `quota_exceeded`) when `owner`'s stored photos and `incoming` more bytes
    /// would pass their quota. Checked against the originals before processing; their display
    /// and thumbnail versions (a few hundred KB) are counted from the next upload on.
    pub(super) async fn within_quota(&self, uow: &mut S::Uow, owner: UserId, incoming: u64) -> ServiceResult<()> {
        let used = uow.storage_used(owner).await?;
        let quota = self.config.user_storage_bytes;
        if used.saturating_add(incoming) <= quota {
            return Ok(());
        }
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        Err(ServiceError::QuotaExceeded(format!(
            "storage quota exceeded: {:.1} MiB of {:.1} MiB used, and this upload needs {:.1} MiB more",
            mib(used),
            mib(quota),
            mib(incoming)
        )))
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
        let incoming = files.iter().map(|file| file.bytes.len() as u64).sum();
        if let Some(key) = &key {
            let scope = self.scope(owner, key);
            if let Some(first) = uow.find_photo_upload_key(scope).await? {
                return replay(&mut uow, &fingerprint, first).await;
            }
        }
        self.within_quota(&mut uow, owner, incoming).await?;
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

    pub(super) fn check_files(&self, files: &[UploadFile]) -> ServiceResult<()> {
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
        let results: Arc<stride_concurrency::sync::Mutex<Vec<Option<Photo>>>> =
            Arc::new(stride_concurrency::sync::Mutex::new(vec![None; request.files.len()]));
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
    pub(super) async fn store_one(
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
        // The pixels' memory is reserved before they exist, and held while they do.
        let cost = process::decode_cost(&bytes, limits).map_err(|e| file_error("", e))?;
        let _pixels = self.budgets.decode(&file.name, cost).await?;
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
pub(super) struct StoredBlobs(Arc<stride_concurrency::sync::Mutex<Vec<BlobKey>>>);

impl StoredBlobs {
    pub(super) fn push(&self, key: BlobKey) {
        self.0.lock().push(key);
    }

    pub(super) fn take(&self) -> Vec<BlobKey> {
        std::mem::take(&mut *self.0.lock())
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
