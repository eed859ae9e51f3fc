//! Rebuilding efforts from stored tracks, after the algorithm changed (`EFFORTS_VERSION`) or
//! for one user: `stride records rebuild [--user NAME]`, and the `records.rebuild` job a server
//! enqueues when it finds efforts older than its own. On the toolkit's [`Pipeline`]:
//!
//! ```text
//! activities needing efforts ─▶ load points (4) ─▶ compute (CPU pool, a core each) ─▶ write (1)
//! ```
//!
//! Each write locks the activity's row first, like every activity write, so a change of sport
//! or visibility at the same moment either comes before (and the copies read it) or waits.
//! An activity deleted meanwhile simply gets no efforts. Records need nothing more: they are
//! the stored efforts' order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;

use stride_concurrency::{Deadline, Outcome, Pipeline, RetryPolicy};
use stride_domain::{ActivityId, BestEffort, Lease, NewJob, UserId, track_points_blob};
use stride_repository::{ActivityRepo, BlobKey, JobRepo, RecordsRepo, Store, UnitOfWork};
use stride_tracks::{EFFORTS_VERSION, decode_points};
use tokio_util::sync::CancellationToken;

use super::RecordsService;
use super::maintain::efforts_of_track;
use crate::jobs::{JobHandler, JobOutcome, KindConfig, Registered};
use crate::uow::finish;
use crate::{ServiceError, ServiceResult};

/// Where a rebuild stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    pub done: u64,
    pub failed: u64,
}

/// How a rebuild ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rebuilt {
    pub rebuilt: u64,
    /// Activities whose points could not be read (each logged); their efforts stay as they were.
    pub failed: u64,
}

const PAGE: u32 = 100;

/// The job a server enqueues when it finds efforts older than its [`EFFORTS_VERSION`].
pub const REBUILD_KIND: &str = "records.rebuild";

impl<S: Store> RecordsService<S> {
    /// How many activities with a track (of `user`) a rebuild would visit.
    pub async fn needing_rebuild(
        &self,
        deadline: Deadline,
        user: Option<UserId>,
        everything: bool,
    ) -> ServiceResult<u64> {
        let older_than = if everything { i32::MAX } else { EFFORTS_VERSION };
        let mut uow = self.store.read(deadline).await?;
        let (mut count, mut after) = (0u64, None);
        loop {
            let page = uow.activities_needing_efforts(older_than, user, after, 1000).await?;
            count += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(*last),
                _ => return Ok(count),
            }
        }
    }

    /// Enqueues the rebuild job (once: a unique key) when any activity's efforts are older
    /// than this version or missing; whether it did. Called as a server starts.
    pub async fn enqueue_rebuild_if_stale(&self, deadline: Deadline) -> ServiceResult<bool> {
        let mut uow = self.store.write(deadline).await?;
        if uow.activities_needing_efforts(EFFORTS_VERSION, None, None, 1).await?.is_empty() {
            uow.rollback().await?;
            return Ok(false);
        }
        let mut job = NewJob::due(REBUILD_KIND, "{}".into(), 5, self.now());
        job.unique_key = Some(REBUILD_KIND.into());
        let enqueued = uow.enqueue(&job, self.now()).await?;
        uow.commit().await?;
        Ok(enqueued)
    }

    /// The rebuild as a durable job: the stale activities only; a retry resumes where the
    /// last attempt stopped, since what it wrote is current.
    pub fn registered(&self) -> Registered {
        let service = self.clone();
        let handler: Arc<dyn JobHandler> = Arc::new(move |_: Lease, deadline: Deadline, _: CancellationToken| {
            let service = service.clone();
            async move {
                let rebuilt = service.rebuild(deadline, None, false, |_| {}).await.map_err(|e| e.to_string())?;
                tracing::info!(rebuilt = rebuilt.rebuilt, failed = rebuilt.failed, "rebuilt best efforts");
                Ok(JobOutcome::Done)
            }
            .boxed()
        });
        Registered {
            config: KindConfig {
                name: REBUILD_KIND,
                timeout: Duration::from_secs(6 * 3600),
                concurrency: 1,
                backoff: RetryPolicy::default(),
                lease: None,
            },
            handler,
        }
    }

    /// Recomputes efforts from the stored tracks, calling `progress` after each activity:
    /// every activity with a track (of `user`) when `everything`, else those whose efforts are
    /// older than [`EFFORTS_VERSION`] or missing.
    pub async fn rebuild(
        &self,
        deadline: Deadline,
        user: Option<UserId>,
        everything: bool,
        progress: impl Fn(RebuildProgress) + Send + Sync + 'static,
    ) -> ServiceResult<Rebuilt> {
        let older_than = if everything { i32::MAX } else { EFFORTS_VERSION };
        let service = Arc::new(self.clone());
        let (load, compute, write) = (service.clone(), service.clone(), service.clone());
        let cores = self.views.cpu().slots();
        let pipeline = Pipeline::<ActivityId, ActivityId, ServiceError>::builder(cores)
            .stage("load", 4, move |id| {
                let service = load.clone();
                async move { service.load(deadline, id).await }
            })
            .stage("compute", cores, move |(id, bytes): (ActivityId, Option<bytes::Bytes>)| {
                let service = compute.clone();
                async move {
                    let Some(bytes) = bytes else { return Ok((id, None)) };
                    let computed = service
                        .views
                        .cpu()
                        .run(move || decode_points(&bytes).map(|s| efforts_of_track(&s.points, &s.distance)))
                        .await?;
                    match computed {
                        Ok(efforts) => Ok((id, Some(efforts))),
                        Err(error) => {
                            tracing::warn!(activity = %id, %error, "a stored track could not be read");
                            Ok((id, None))
                        }
                    }
                }
            })
            .stage("write", 1, move |(id, efforts): (ActivityId, Option<Vec<BestEffort>>)| {
                let service = write.clone();
                async move {
                    // An unreadable track is this activity's outcome, not the pipeline's failure
                    // (an error would cancel every stage): its efforts stay as they were.
                    match efforts {
                        Some(efforts) => service.write(deadline, id, &efforts).await.map(|()| true),
                        None => Ok(false),
                    }
                }
            })
            .build();
        let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut fatal = None;
        pipeline
            .drive(self.needing(deadline, user, older_than), |_, outcome| {
                match outcome {
                    Outcome::Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                    Outcome::Ok(false) => failed.fetch_add(1, Ordering::Relaxed),
                    Outcome::Err(error) => {
                        fatal.get_or_insert(error);
                        0
                    }
                    Outcome::Panicked(why) => {
                        fatal.get_or_insert(ServiceError::Internal(why));
                        0
                    }
                    Outcome::Cancelled => 0,
                };
                progress(RebuildProgress {
                    done: done.load(Ordering::Relaxed),
                    failed: failed.load(Ordering::Relaxed),
                });
            })
            .await;
        if let Some(error) = fatal {
            return Err(error);
        }
        Ok(Rebuilt { rebuilt: done.load(Ordering::Relaxed), failed: failed.load(Ordering::Relaxed) })
    }

    /// The ids to rebuild, a page at a time, each page read after the previous one was fed.
    fn needing(
        &self,
        deadline: Deadline,
        user: Option<UserId>,
        older_than: i32,
    ) -> impl futures::Stream<Item = ActivityId> + Send + 'static {
        let store = self.store.clone();
        let pages = futures::stream::unfold(Some(None), move |after: Option<Option<ActivityId>>| {
            let store = store.clone();
            async move {
                let after = after?;
                let read = async {
                    store.read(deadline).await?.activities_needing_efforts(older_than, user, after, PAGE).await
                };
                match read.await {
                    Ok(page) if !page.is_empty() => {
                        let next = (page.len() == PAGE as usize).then(|| page.last().copied());
                        Some((page, next))
                    }
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(%error, "could not read the activities to rebuild");
                        None
                    }
                }
            }
        });
        futures::StreamExt::flat_map(pages, futures::stream::iter)
    }

    /// The stored points of one activity; `None` (logged) when they cannot be read.
    async fn load(&self, deadline: Deadline, id: ActivityId) -> ServiceResult<(ActivityId, Option<bytes::Bytes>)> {
        let key = BlobKey::parse(&track_points_blob(id)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        match self.views.storage().get(&key, deadline).await {
            Ok(bytes) => Ok((id, Some(bytes))),
            Err(error) => {
                tracing::warn!(activity = %id, %error, "a track's points could not be loaded");
                Ok((id, None))
            }
        }
    }

    async fn write(&self, deadline: Deadline, id: ActivityId, efforts: &[BestEffort]) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let written = async {
            if uow.activity_by_id_for_update(id).await?.is_some() {
                uow.replace_efforts(id, efforts, EFFORTS_VERSION).await?;
            }
            Ok(())
        }
        .await;
        finish(uow, written).await
    }
}
