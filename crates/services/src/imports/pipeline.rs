//! One attempt of an archive's import, on the toolkit's [`Pipeline`]:
//!
//! ```text
//! queued items ─▶ inflate (blocking pool) ─▶ parse (CPU pool) ─▶ store blobs ─▶ write ─▶ progress
//! ```
//!
//! Inflate, parse and write take `workers` items at once (one per core plus one by default), store 4,
//! progress one, and the channels between them hold one item, so the archive's size never
//! sets the memory: an item is at most 100 MiB once inflated, and an item past 8 MiB must hold
//! the one "exclusive" permit until it is stored ([`super::entry`]), so two big ones are never
//! in memory together. The CPU work of inflating and parsing holds one of the attempt's
//! `workers` CPU slots: `workers` bounds how many cores the import keeps busy (the default's
//! extra slot fills the moments a slot's holder is between threads), while its storage and
//! database waits overlap that work. Photos are in [`super::media`], the write stage in
//! [`super::commit`].
//!
//! Item-level errors (a damaged entry, a file that is no track, a duplicate) settle their item
//! where they happen and are not failures of the pipeline. Archive-level ones (the archive
//! past 8 GiB inflated, a lost lease, the database or storage still failing after their
//! retries) are: the pipeline's first error cancels every stage, and the job fails the
//! import (permanent) or retries from the first item still queued (transient). Each item
//! commits with its activity, fenced by the attempt, so a rescued job never imports an entry
//! twice and loses none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stride_concurrency::{Deadline, Outcome, Pipeline};
use stride_domain::{
    Activity, ActivityDraft, ActivityId, BestEffort, Import, ImportItem, Lease, Photo, Problem, Source, TrackSummary,
    import_item_blob, track_points_blob,
};
use stride_repository::{BlobKey, ImportRepo, ItemOutcome, Store, TrackFile};
use stride_tracks::{Archive, Media, RowFile, StravaRow, Work};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ImportService;
use super::archive::SharedFile;
use super::entry::{Inflation, Meter, inflate_entry};
use super::recorded::{Defaults, record};
use super::rows::{apply_row, manual_draft};
use super::run::{Stop, problem};
use crate::ServiceError;
use crate::uow::finish;

/// Items storing their blobs at once: they wait on storage, not the CPU, so more than the
/// workers; memory stays bounded since a big item holds the exclusive permit until stored.
const STORE_CONCURRENCY: usize = 4;
/// How often the watcher looks whether the import was cancelled.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How often the rate is recorded.
const RECORD_EVERY: Duration = Duration::from_secs(1);

/// An item still queued and what it is, as the intake reads them (or the read's failure).
type Queued = Result<(ImportItem, Work), Stop>;

/// A row of the CSV and the photos it names.
pub(super) struct RowParts {
    row: Box<StravaRow>,
    media: Vec<Media>,
}

/// An item between stages.
pub(super) enum Step {
    /// Its outcome is committed (a failure, a duplicate).
    Settled,
    Manual {
        item: ImportItem,
        row: RowParts,
    },
    Inflated(Box<Inflated>),
    Made(Box<Made>),
    Ready(Box<Ready>),
}

pub(super) struct Inflated {
    item: ImportItem,
    row: Option<RowParts>,
    /// The entry as the archive holds it (kept as the activity's original file).
    raw: Bytes,
    plain: Bytes,
    sha: [u8; 32],
    /// Held by an item past [`EXCLUSIVE_ABOVE`](super::entry) until it is stored.
    _exclusive: Option<OwnedSemaphorePermit>,
}

pub(super) struct Made {
    /// Held by an item past 8 MiB until its original is stored.
    _exclusive: Option<OwnedSemaphorePermit>,
    item: ImportItem,
    id: ActivityId,
    draft: ActivityDraft,
    track: Option<MadeTrack>,
    row: Option<RowParts>,
}

pub(super) struct MadeTrack {
    source: Source,
    efforts: Vec<BestEffort>,
    summary: TrackSummary,
    points: Vec<u8>,
    raw: Bytes,
    sha: [u8; 32],
}

pub(super) struct Ready {
    pub(super) item: ImportItem,
    pub(super) activity: Activity,
    pub(super) file: Option<TrackFile>,
    pub(super) efforts: Vec<BestEffort>,
    pub(super) strava_id: Option<String>,
    pub(super) photos: Vec<Photo>,
    pub(super) warnings: Vec<Problem>,
    /// Everything stored for it, deleted if it is not written.
    pub(super) blobs: Vec<BlobKey>,
}

/// What one attempt shares between its stages.
pub(super) struct Attempt<S> {
    pub(super) service: ImportService<S>,
    pub(super) lease: Lease,
    pub(super) import: Import,
    pub(super) defaults: Defaults,
    pub(super) archive: Archive<SharedFile>,
    pub(super) deadline: Deadline,
    inflated: Arc<AtomicU64>,
    exclusive: Arc<Semaphore>,
    /// One permit per core the attempt's CPU work (inflate, parse) may use at once.
    cpu_slots: Arc<Semaphore>,
    progress: stride_concurrency::sync::Mutex<Progress>,
}

struct Progress {
    started: Instant,
    settled: u64,
    recorded: Instant,
}

/// How an attempt's pipeline ended.
pub(super) enum Ended {
    /// Every item fed was settled.
    Drained,
    /// Intake stopped because the import is no longer active (cancelled).
    Stopped,
}

impl<S: Store> Attempt<S> {
    pub(super) fn new(
        service: ImportService<S>,
        lease: Lease,
        import: Import,
        defaults: Defaults,
        archive: Archive<SharedFile>,
        deadline: Deadline,
    ) -> Self {
        let now = Instant::now();
        let workers = service.config.workers.max(1);
        Self {
            service,
            lease,
            import,
            defaults,
            archive,
            deadline,
            inflated: Arc::default(),
            exclusive: Arc::new(Semaphore::new(1)),
            cpu_slots: Arc::new(Semaphore::new(workers)),
            progress: stride_concurrency::sync::Mutex::new(Progress { started: now, settled: 0, recorded: now }),
        }
    }

    /// Feeds `work` through the stages until it is done, the import is cancelled, the lease
    /// is lost or a stage fails at the archive level (the first such failure is returned).
    pub(super) async fn run(
        self: Arc<Self>,
        work: impl futures::Stream<Item = Result<(ImportItem, Work), Stop>> + Send + 'static,
        lost: &CancellationToken,
    ) -> Result<Ended, Stop> {
        let workers = self.service.config.workers.max(1);
        let stage = |f: fn(Arc<Self>, Step) -> futures::future::BoxFuture<'static, Result<Step, Stop>>| {
            let attempt = self.clone();
            move |step| f(attempt.clone(), step)
        };
        let intake = self.clone();
        let pipeline = Pipeline::<Queued, Queued, Stop>::builder(1)
            .stage("inflate", workers, move |work| {
                let attempt = intake.clone();
                async move { attempt.inflate(work).await }
            })
            .stage("parse", workers, stage(|a, s| Box::pin(a.parse(s))))
            .stage("store", STORE_CONCURRENCY, stage(|a, s| Box::pin(a.store(s))))
            .stage("write", workers, stage(|a, s| Box::pin(a.write(s))))
            .stage("progress", 1, stage(|a, s| Box::pin(a.progress(s))))
            .build();
        let stopped = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(self.clone().watch(pipeline.cancellation(), lost.clone(), stopped.clone()));
        let feed = stopped.clone();
        let intake = futures::StreamExt::take_while(work, move |_| std::future::ready(!feed.load(Ordering::Acquire)));
        let mut failure = None;
        pipeline
            .drive(intake, |_, outcome| match outcome {
                Outcome::Err(stop) => {
                    failure.get_or_insert(stop);
                }
                Outcome::Panicked(why) => {
                    failure.get_or_insert(Stop::Failed(ServiceError::Internal(why)));
                }
                Outcome::Ok(_) | Outcome::Cancelled => {}
            })
            .await;
        watcher.abort();
        if lost.is_cancelled() {
            return Err(Stop::LeaseLost);
        }
        if let Some(stop) = failure {
            return Err(stop);
        }
        Ok(if stopped.load(Ordering::Acquire) { Ended::Stopped } else { Ended::Drained })
    }

    /// Stops intake when the import stops being active, and the pipeline when the lease is lost.
    async fn watch(self: Arc<Self>, pipeline: CancellationToken, lost: CancellationToken, stopped: Arc<AtomicBool>) {
        loop {
            tokio::select! {
                () = pipeline.cancelled() => return,
                () = lost.cancelled() => {
                    stopped.store(true, Ordering::Release);
                    pipeline.cancel();
                    return;
                }
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            let current = async { self.service.store.read(self.deadline).await?.import_by_id(self.import.id).await };
            if let Ok(current) = current.await
                && current.is_none_or(|import| !import.state.is_active())
            {
                stopped.store(true, Ordering::Release);
                return;
            }
        }
    }

    async fn fail(&self, item: &ImportItem, problem: Problem) -> Result<Step, Stop> {
        self.service.settle(&self.lease, item, ItemOutcome::Failed(problem), None).await?;
        Ok(Step::Settled)
    }

    /// The activity of the user this item repeats: the same bytes, or the same Strava activity.
    async fn duplicate_of(&self, sha: Option<&[u8; 32]>, row: Option<&RowParts>) -> Result<Option<ActivityId>, Stop> {
        let mut uow = self.service.store.read(self.deadline).await?;
        let owner = self.import.user_id;
        if let Some(sha) = sha
            && let Some(earlier) = uow.activity_with_file(owner, sha).await?
        {
            return Ok(Some(earlier));
        }
        match row.map(|row| row.row.activity_id.as_str()).filter(|id| !id.is_empty()) {
            Some(strava) => Ok(uow.activity_with_strava_id(owner, strava).await?),
            None => Ok(None),
        }
    }

    async fn inflate(self: Arc<Self>, queued: Queued) -> Result<Step, Stop> {
        let (item, work) = queued?;
        let (entry, row) = match work {
            Work::Unsafe { why } => return self.fail(&item, Problem::new("unsafe_entry", why)).await,
            Work::Track { entry } => (entry, None),
            Work::Row { row, file, media } => {
                let parts = RowParts { row, media };
                match file {
                    RowFile::Entry(entry) => (entry, Some(parts)),
                    RowFile::None => {
                        if let Some(earlier) = self.duplicate_of(None, Some(&parts)).await? {
                            return self.settled_as_duplicate(&item, earlier).await;
                        }
                        return Ok(Step::Manual { item, row: parts });
                    }
                    RowFile::Missing => {
                        let why = format!("{} is not in the archive", parts.row.filename);
                        return self.fail(&item, Problem::new("missing_file", why)).await;
                    }
                    RowFile::Unsafe(why) => return self.fail(&item, Problem::new("unsafe_entry", why)).await,
                }
            }
        };
        let archive = self.archive.clone();
        let cpu = self.cpu_slots.clone().acquire_owned().await.map_err(|_| closed())?;
        let meter = Meter::new(cpu, self.cpu_slots.clone(), self.inflated.clone(), self.exclusive.clone());
        let read = tokio::task::spawn_blocking(move || inflate_entry(archive, entry, meter))
            .await
            .map_err(|e| ServiceError::Internal(format!("inflating an entry: {e}")))?;
        let (raw, plain, sha, exclusive) = match read {
            Ok(read) => read,
            Err(Inflation::OverTotal) => {
                let why = "the archive is over 8 GiB once inflated";
                return Err(Stop::Archive(Problem::new("too_large", why)));
            }
            Err(Inflation::Entry(error)) => {
                return self.fail(&item, Problem::new(error.code(), error.to_string())).await;
            }
        };
        if let Some(earlier) = self.duplicate_of(Some(&sha), row.as_ref()).await? {
            return self.settled_as_duplicate(&item, earlier).await;
        }
        Ok(Step::Inflated(Box::new(Inflated { item, row, raw, plain, sha, _exclusive: exclusive })))
    }

    async fn settled_as_duplicate(&self, item: &ImportItem, earlier: ActivityId) -> Result<Step, Stop> {
        self.service.settle(&self.lease, item, ItemOutcome::Duplicate(earlier), None).await?;
        Ok(Step::Settled)
    }

    async fn parse(self: Arc<Self>, step: Step) -> Result<Step, Stop> {
        let defaults = Defaults { now: self.service.clock.now(), ..self.defaults };
        match step {
            Step::Manual { item, row } => match manual_draft(&row.row, defaults.visibility, defaults.now) {
                Ok(draft) => {
                    let made =
                        Made { _exclusive: None, item, id: ActivityId::new(), draft, track: None, row: Some(row) };
                    Ok(Step::Made(Box::new(made)))
                }
                Err(problem) => self.fail(&item, problem).await,
            },
            Step::Inflated(inflated) => {
                let Inflated { item, row, raw, plain, sha, _exclusive } = *inflated;
                // Given back by the work itself as it ends, not when this task is next polled:
                // on busy cores that poll can come a time slice later, a slot idle meanwhile.
                let cpu = self.cpu_slots.clone().acquire_owned().await.map_err(|_| closed())?;
                let recorded = self
                    .service
                    .cpu
                    .run(move || {
                        let recorded = stride_tracks::parse(&plain).and_then(|track| record(track, defaults));
                        drop(cpu);
                        recorded
                    })
                    .await?;
                match recorded {
                    Ok(mut recorded) => {
                        if let Some(row) = &row {
                            apply_row(&mut recorded.draft, &row.row);
                        }
                        let track = MadeTrack {
                            source: recorded.source,
                            efforts: recorded.efforts,
                            summary: recorded.summary,
                            points: recorded.points,
                            raw,
                            sha,
                        };
                        let (id, draft) = (ActivityId::new(), recorded.draft);
                        let made = Made { _exclusive, item, id, draft, track: Some(track), row };
                        Ok(Step::Made(Box::new(made)))
                    }
                    Err(error) => self.fail(&item, problem(&error)).await,
                }
            }
            other => Ok(other),
        }
    }

    async fn store(self: Arc<Self>, step: Step) -> Result<Step, Stop> {
        let Step::Made(made) = step else { return Ok(step) };
        let Made { _exclusive, item, id, draft, track, row } = *made;
        let now = self.service.clock.now();
        let owner = self.import.user_id;
        let mut blobs = Vec::new();
        let stored = async {
            let mut efforts = Vec::new();
            let (activity, file) = match track {
                Some(track) => {
                    let points = parse_key(&track_points_blob(id))?;
                    let original = parse_key(&import_item_blob(self.import.id, item.index))?;
                    blobs.extend([points.clone(), original.clone()]);
                    let bytes = track.raw.len() as u64;
                    efforts = track.efforts;
                    futures::try_join!(self.put(&points, Bytes::from(track.points)), self.put(&original, track.raw))?;
                    let file = TrackFile {
                        activity_id: id,
                        user_id: owner,
                        sha256: track.sha.to_vec(),
                        name: item.name.clone(),
                        blob_key: original.as_str().to_owned(),
                        bytes,
                    };
                    (Activity::recorded(id, owner, draft, track.source, track.summary, now), Some(file))
                }
                None => (Activity::create(id, owner, draft, now), None),
            };
            let (photos, warnings) = match &row {
                Some(row) => self.photos(id, &row.media, &mut blobs).await?,
                None => (Vec::new(), Vec::new()),
            };
            Ok::<_, Stop>((activity, file, efforts, photos, warnings))
        }
        .await;
        match stored {
            Ok((activity, file, efforts, photos, warnings)) => {
                let strava_id = row.map(|row| row.row.activity_id).filter(|id| !id.is_empty());
                Ok(Step::Ready(Box::new(Ready { item, activity, file, efforts, strava_id, photos, warnings, blobs })))
            }
            Err(stop) => {
                self.service.storage.delete_all(&blobs, Deadline::after(Duration::from_secs(30))).await;
                Err(stop)
            }
        }
    }

    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), Stop> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        let stored =
            self.service.storage.put(key, bytes, "application/octet-stream", self.deadline, &cancel, &attempts).await;
        attempts.close();
        attempts.wait().await;
        Ok(stored?)
    }

    /// Counts settled items and records the rate about once a second.
    async fn progress(self: Arc<Self>, step: Step) -> Result<Step, Stop> {
        let rate = {
            let mut progress = self.progress.lock();
            progress.settled += 1;
            (progress.recorded.elapsed() >= RECORD_EVERY).then(|| {
                progress.recorded = Instant::now();
                progress.settled as f64 / progress.started.elapsed().as_secs_f64().max(1e-3)
            })
        };
        if let Some(rate) = rate {
            let mut uow = self.service.store.write(self.deadline).await?;
            let recorded = uow.record_progress(self.import.id, rate).await.map_err(ServiceError::from);
            finish(uow, recorded).await?;
        }
        Ok(step)
    }
}

fn closed() -> Stop {
    Stop::Failed(ServiceError::Internal("the attempt's CPU slots are closed".into()))
}

fn parse_key(key: &str) -> Result<BlobKey, Stop> {
    BlobKey::parse(key).map_err(|e| Stop::Failed(ServiceError::Internal(e.to_string())))
}
