//! `stride photos reprocess`: re-makes the renditions of photos made by an older processing
//! version, on the toolkit's `Pipeline` with its CPU stages on the service's one `CpuPool`.
//!
//! read (row + original) → resize (display) → thumbnail → upload (both, concurrently) → record
//!
//! Every channel between stages is bounded, so a slow upload slows the reads down instead of
//! piling decoded images up in memory. A photo that fails at any stage is carried to the end
//! as a failure with its reason (one bad photo does not stop the run); the pipeline's own
//! first-failure cancellation is kept for what should stop everything: an outage of the
//! database or of the photo storage, which would fail every remaining photo the same way, stops
//! intake and cancels the stages, and the photos not done are left for the next run.
//!
//! Every photo is always wholly old or wholly new: new renditions are written under names
//! carrying the new version, then one commit switches the row (only if it is still at the
//! version it was read at), then the old renditions are deleted. Stopping intake (Ctrl-C)
//! lets the photos in flight finish; a re-run skips up-to-date photos, so it resumes.

use std::sync::Arc;

use bytes::Bytes;
use stride_concurrency::{Deadline, Outcome, Pipeline};
use stride_domain::{Photo, PhotoId, PhotoKind};
use stride_repository::{PhotoRepo, PhotoSelection, Store, UnitOfWork};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::process::{self, Displayed, Processed};
use super::{PROCESSING_VERSION, PhotoService, blob_key, photo_from};
use crate::{ServiceError, ServiceResult};

#[derive(Debug, Clone)]
pub struct ReprocessOptions {
    pub selection: PhotoSelection,
    /// Photos in each I/O stage at once (reads, uploads, commits).
    pub concurrency: usize,
    /// Count what would be done; change nothing.
    pub dry_run: bool,
    /// The budget of each photo's storage and database calls, per stage.
    pub step_timeout: std::time::Duration,
}

/// Failures that would fail every photo after this one the same way.
fn is_outage(error: &ServiceError) -> bool {
    matches!(error, ServiceError::Unavailable(_) | ServiceError::StorageUnavailable(_) | ServiceError::Timeout)
}

/// What a run reports as it goes, for a progress bar or log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReprocessEvent {
    /// Found `to_process` photos to re-make; `up_to_date` are skipped.
    Planned { to_process: u64, up_to_date: u64 },
    /// One photo finished: `Ok(true)` re-made, `Ok(false)` skipped (changed or deleted
    /// meanwhile), `Err` failed with the reason.
    Finished { photo: PhotoId, outcome: Result<bool, String> },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReprocessSummary {
    pub processed: u64,
    pub skipped: u64,
    pub failed: Vec<(PhotoId, String)>,
    /// Photos that would be re-made (dry run) or were left for the next run (stopped).
    pub remaining: u64,
    pub stopped: bool,
    /// The outage (database or storage unavailable) that stopped the run, if one did.
    pub outage: Option<String>,
}

/// One photo on its way through the pipeline: its id, and the row as read with how far it got,
/// or why it stopped. `None` is a photo skipped (deleted, or made current by someone else).
type Item<T> = (PhotoId, Result<(Photo, T), String>);

/// Runs a stage's work on an item still going, and carries a failure or a skip through.
async fn next<T, U, Fut>(item: Option<Item<T>>, work: impl FnOnce(Photo, T) -> Fut) -> Option<Item<U>>
where
    Fut: std::future::Future<Output = Result<(Photo, U), String>>,
{
    let (id, state) = item?;
    Some((
        id,
        match state {
            Ok((photo, value)) => work(photo, value).await,
            Err(why) => Err(why),
        },
    ))
}

impl<S: Store> PhotoService<S> {
    /// Re-makes every photo of the selection not at [`PROCESSING_VERSION`], until done or
    /// until `stop` is cancelled (then the photos in flight finish and the rest wait).
    pub async fn reprocess(
        &self,
        options: ReprocessOptions,
        stop: CancellationToken,
        progress: impl Fn(ReprocessEvent) + Send + Sync + 'static,
    ) -> ServiceResult<ReprocessSummary> {
        let step = || Deadline::after(options.step_timeout);
        let mut uow = self.store.read(step()).await?;
        let (total, up_to_date) = uow.count_photos(options.selection, PROCESSING_VERSION).await?;
        // "list": every id to re-make, in pages (16 bytes a photo).
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = uow.photos_to_reprocess(options.selection, PROCESSING_VERSION, after, 500).await?;
            after = page.last().map(|p| p.id);
            ids.extend(page.iter().map(|p| p.id));
            if page.len() < 500 {
                break;
            }
        }
        drop(uow);
        progress(ReprocessEvent::Planned { to_process: ids.len() as u64, up_to_date });
        let mut summary = ReprocessSummary { skipped: total.saturating_sub(ids.len() as u64), ..Default::default() };
        if options.dry_run {
            summary.remaining = ids.len() as u64;
            return Ok(summary);
        }

        // The CPU stages run on the service's one CPU pool, each as wide as the pool: the pool's
        // slots, not the stages, bound the CPU work in flight.
        let workers = self.cpu.slots();
        let progress = Arc::new(progress);
        let io = options.concurrency.max(1);
        let (timeout, limits) = (options.step_timeout, self.config.limits);
        let (read_service, resize, thumb, upload, record) =
            (self.clone(), self.cpu.clone(), self.cpu.clone(), self.clone(), (self.clone(), progress.clone()));
        // The pipeline's error is an outage (database or storage down): it stops intake and
        // cancels every stage at once, instead of failing each remaining photo in turn.
        let pipeline = Pipeline::<PhotoId, PhotoId, String>::builder(io)
            .stage("read", io, move |id: PhotoId| {
                let this = read_service.clone();
                async move { this.read_original(id, Deadline::after(timeout)).await }
            })
            .stage("resize", workers, move |item: Option<Item<Bytes>>| {
                let cpu = resize.clone();
                async move {
                    Ok(next(item, |photo, bytes| async move {
                        let displayed =
                            cpu.run(move || process::display(&bytes, limits)).await.map_err(|e| e.to_string())?;
                        Ok((photo, displayed.map_err(|e| format!("decode and resize: {e}"))?))
                    })
                    .await)
                }
            })
            .stage("thumbnail", workers, move |item: Option<Item<Displayed>>| {
                let cpu = thumb.clone();
                async move {
                    Ok(next(item, |photo, displayed| async move {
                        let processed =
                            cpu.run(move || process::thumbnail(displayed)).await.map_err(|e| e.to_string())?;
                        Ok((photo, processed.map_err(|e| format!("thumbnail: {e}"))?))
                    })
                    .await)
                }
            })
            .stage("upload", io, move |item: Option<Item<Processed>>| {
                let this = upload.clone();
                async move {
                    Ok(next(item, |photo, processed| async move {
                        let new = this.upload_renditions(&photo, &processed, Deadline::after(timeout)).await?;
                        Ok((photo, new))
                    })
                    .await)
                }
            })
            .stage("record", io, move |item: Option<Item<Photo>>| {
                let (this, progress) = record.clone();
                async move {
                    let Some((id, made)) = item else { return Ok(None) };
                    let outcome = match made {
                        Err(why) => Err(why),
                        Ok((old, new)) => this.switch_renditions(&old, &new, Deadline::after(timeout)).await,
                    };
                    progress(ReprocessEvent::Finished { photo: id, outcome: outcome.clone() });
                    Ok(Some((id, outcome)))
                }
            })
            .build();
        let by_seq = ids.clone();
        let intake = ids.into_iter().take_while(|_| !stop.is_cancelled());
        let outcomes = pipeline.run(intake).await;

        for (seq, outcome) in &outcomes {
            let id = by_seq.get(*seq as usize).copied().unwrap_or_default();
            match outcome {
                Outcome::Ok(Some((_, Ok(true)))) => summary.processed += 1,
                Outcome::Ok(Some((_, Ok(false)))) | Outcome::Ok(None) => summary.skipped += 1,
                Outcome::Ok(Some((id, Err(why)))) => summary.failed.push((*id, why.clone())),
                Outcome::Panicked(why) => summary.failed.push((id, format!("panicked: {why}"))),
                // Untouched by the outage that stopped the run: left for the next one.
                Outcome::Err(why) => {
                    summary.outage.get_or_insert_with(|| why.clone());
                    summary.remaining += 1;
                }
                Outcome::Cancelled => summary.remaining += 1,
            }
        }
        summary.remaining += (by_seq.len() - outcomes.len()) as u64;
        summary.stopped = stop.is_cancelled();
        Ok(summary)
    }

    /// The id of the user named `username`, for `--user`.
    pub async fn user_named(&self, deadline: Deadline, username: &str) -> ServiceResult<stride_domain::UserId> {
        let username = stride_domain::Username::parse(username)
            .map_err(|e| crate::ServiceError::Invalid { field: "user", message: e.to_string() })?;
        let mut uow = self.store.read(deadline).await?;
        let found = stride_repository::UserRepo::credentials_by_username(&mut uow, &username).await?;
        found.map(|c| c.user.id).ok_or(crate::ServiceError::NotFound)
    }

    /// The current row and its original's bytes; `None` if the photo went away or is up to
    /// date already (a concurrent run). `Err` is an outage, which stops the whole run; a
    /// problem of this photo alone is carried as its item's failure.
    async fn read_original(&self, id: PhotoId, deadline: Deadline) -> Result<Option<Item<Bytes>>, String> {
        let row = async { Ok::<_, ServiceError>(self.store.read(deadline).await?.photo_by_id(id).await?) };
        let photo = match row.await {
            Ok(Some(photo)) if photo.processing_version != PROCESSING_VERSION => photo,
            Ok(_) => return Ok(None),
            Err(error) if is_outage(&error) => return Err(format!("the database: {error}")),
            Err(error) => return Ok(Some((id, Err(format!("read the row: {error}"))))),
        };
        let bytes = match blob_key(&photo, PhotoKind::Original) {
            Ok(key) => match self.storage.get(&key, deadline).await {
                Err(error) if is_outage(&error) => return Err(format!("photo storage: {error}")),
                read => read.map_err(|e| format!("read the original: {e}")),
            },
            Err(error) => Err(error.to_string()),
        };
        Ok(Some((id, bytes.map(|bytes| (photo, bytes)))))
    }

    /// Stores both new renditions, concurrently, under the new version's names.
    async fn upload_renditions(&self, old: &Photo, processed: &Processed, deadline: Deadline) -> Result<Photo, String> {
        let original = (old.original.bytes, old.sha256);
        let mut new = photo_from(old.id, old.user_id, old.activity_id, original, processed, old.created_at);
        new.original = old.original;
        new.position = old.position;
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        let put = |kind: PhotoKind, bytes: Bytes| {
            let (new, cancel, attempts) = (&new, &cancel, &attempts);
            async move {
                let key = blob_key(new, kind)?;
                let content_type = new.rendition(kind).format.content_type();
                self.storage.put(&key, bytes, content_type, deadline, cancel, attempts).await
            }
        };
        let stored = futures::future::try_join(
            put(PhotoKind::Display, processed.display.bytes.clone()),
            put(PhotoKind::Thumb, processed.thumb.bytes.clone()),
        )
        .await;
        match stored {
            Ok(_) => Ok(new),
            Err(error) => {
                attempts.close();
                attempts.wait().await;
                self.delete_renditions(&new).await;
                Err(format!("store the renditions: {error}"))
            }
        }
    }

    /// Switches the row to the new renditions and deletes the old ones; if the row changed
    /// meanwhile, the new ones are deleted instead and the photo counts as skipped.
    async fn switch_renditions(&self, old: &Photo, new: &Photo, deadline: Deadline) -> Result<bool, String> {
        let switched: ServiceResult<bool> = async {
            let mut uow = self.store.write(deadline).await?;
            let switched = uow.replace_renditions(new, old.processing_version).await?;
            uow.commit().await?;
            Ok(switched)
        }
        .await;
        match switched {
            Ok(true) => {
                self.delete_renditions(old).await;
                Ok(true)
            }
            Ok(false) => {
                self.delete_renditions(new).await;
                Ok(false)
            }
            // Unknown whether it committed: leave both sets; gc removes the unnamed one.
            Err(error) => Err(format!("record: {error}")),
        }
    }

    async fn delete_renditions(&self, photo: &Photo) {
        let keys: Vec<_> =
            [PhotoKind::Display, PhotoKind::Thumb].iter().filter_map(|&kind| blob_key(photo, kind).ok()).collect();
        self.storage.delete_all(&keys, Deadline::after(self.config.storage_timeout * 3)).await;
    }
}
