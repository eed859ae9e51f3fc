//! Photo deletion: a photo's row, the blobs of rows that are gone, and the garbage collector.
//!
//! Blobs and rows cannot share a transaction. A delete removes the rows and, in the same
//! commit, enqueues a durable `photos.delete_blobs` job naming their blobs: once the rows are
//! gone the blobs are sure to follow, whatever happens to the process after the commit (the
//! job retries a failing store with backoff). What still escapes (a blob stored by an upload
//! whose process died before its rows) is found by `stride photos gc`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stride_concurrency::Deadline;
use stride_domain::{NewJob, Photo, PhotoId, PhotoKind, UserId, minted_at_ms, photo_of_blob};
use stride_repository::{BlobKey, JobRepo, PhotoRepo, Store};

use super::{PhotoService, blob_keys, owned_for_update};
use crate::uow::finish;
use crate::{ServiceError, ServiceResult};

/// The job kind that removes the blobs of deleted photos.
pub const DELETE_BLOBS_KIND: &str = "photos.delete_blobs";

/// Attempts of one blob-deletion job; with the kind's backoff they span about a day.
const DELETE_BLOBS_ATTEMPTS: u32 = 12;

#[derive(Serialize, Deserialize)]
struct DeleteBlobs {
    keys: Vec<String>,
}

/// The job that removes the blobs of `photos`, whose rows this unit of work deletes; `None`
/// when there are none.
pub(crate) fn delete_blobs_job(photos: &[Photo], now: DateTime<Utc>) -> ServiceResult<Option<NewJob>> {
    if photos.is_empty() {
        return Ok(None);
    }
    let keys = blob_keys(photos).into_iter().map(|key| key.as_str().to_owned()).collect();
    delete_keys_job(keys, now).map(Some)
}

/// The job that removes `keys` (blobs whose rows this unit of work deletes: photos, and a
/// track's points and original file).
pub(crate) fn delete_keys_job(keys: Vec<String>, now: DateTime<Utc>) -> ServiceResult<NewJob> {
    let payload = serde_json::to_string(&DeleteBlobs { keys }).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(NewJob::due(DELETE_BLOBS_KIND, payload, DELETE_BLOBS_ATTEMPTS, now))
}

impl<S: Store> PhotoService<S> {
    /// Deletes the owner's photo: the row and the job that removes its blobs, in one commit.
    pub async fn delete(&self, deadline: Deadline, owner: UserId, id: PhotoId) -> ServiceResult<()> {
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let photo = uow.photo_by_id(id).await?.ok_or(ServiceError::NotFound)?;
            if photo.user_id != owner {
                return Err(ServiceError::NotFound);
            }
            owned_for_update(&mut uow, owner, photo.activity_id).await?;
            uow.delete_photo(&photo).await?;
            if let Some(job) = delete_blobs_job(std::slice::from_ref(&photo), now)? {
                uow.enqueue(&job, now).await?;
            }
            Ok(())
        }
        .await;
        finish(uow, outcome).await
    }

    /// Runs one `photos.delete_blobs` job: deletes every blob it names (a blob already gone
    /// counts as deleted, so a retry after a partial run is harmless). Any failure fails the
    /// attempt, and the job runner tries again later.
    pub async fn run_delete_blobs(&self, payload: &str, deadline: Deadline) -> Result<usize, String> {
        let job: DeleteBlobs = serde_json::from_str(payload).map_err(|e| format!("bad payload: {e}"))?;
        let keys = job
            .keys
            .iter()
            .map(|key| BlobKey::parse(key).map_err(|e| format!("bad payload: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let failed = self.storage.delete_all(&keys, deadline).await;
        if failed > 0 {
            return Err(format!("{failed} of {} blobs could not be deleted yet", keys.len()));
        }
        Ok(keys.len())
    }

    /// `stride photos gc`: deletes every photo blob no row names — a photo whose row is gone,
    /// or a rendition a re-processing run replaced — except those of photos minted within
    /// `gc_grace`, whose upload may still be running. Returns (blobs looked at, deleted).
    pub async fn collect_garbage(&self, deadline: Deadline, dry_run: bool) -> ServiceResult<(usize, Vec<BlobKey>)> {
        let keys = self.storage.list("photos/", deadline).await?;
        let grace_ms = u64::try_from(self.config.gc_grace.as_millis()).unwrap_or(u64::MAX);
        let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let mut garbage = Vec::new();
        let mut current: Option<(PhotoId, Option<Photo>)> = None;
        let mut uow = self.store.read(deadline).await?;
        for key in &keys {
            let Some(id) = photo_of_blob(key.as_str()) else { continue };
            if minted_at_ms(id).is_some_and(|minted| minted.saturating_add(grace_ms) > now_ms) {
                continue;
            }
            if current.as_ref().is_none_or(|(seen, _)| *seen != id) {
                current = Some((id, uow.photo_by_id(id).await?));
            }
            let named = current.as_ref().and_then(|(_, photo)| photo.as_ref()).is_some_and(|photo| {
                let version =
                    |name: &str| name.rsplit_once("-v").and_then(|(_, v)| v.split('.').next()?.parse::<u32>().ok());
                [PhotoKind::Original, PhotoKind::Display, PhotoKind::Thumb]
                    .iter()
                    .any(|&kind| photo.blob_name(kind) == key.as_str())
                    // A rendition newer than the row is a re-processing run in flight.
                    || version(key.as_str()).is_some_and(|v| v > photo.processing_version)
            });
            if !named {
                garbage.push(key.clone());
            }
        }
        drop(uow);
        self.storage.delete_garbage(&garbage, dry_run, deadline).await?;
        Ok((keys.len(), garbage))
    }
}
