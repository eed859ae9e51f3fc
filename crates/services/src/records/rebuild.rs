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

use stride_concurrency::{Deadline, Outcome, Pipeline};
use stride_domain::{ActivityId, BestEffort, UserId, track_points_blob};
use stride_repository::{ActivityRepo, BlobKey, RecordsRepo, Store};
use stride_tracks::{EFFORTS_VERSION, decode_points};

use super::RecordsService;
use super::maintain::efforts_of_track;
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

impl<S: Store> RecordsService<S> {
    /// How many activities with a track have no efforts of the current version (of `user`).
    pub async fn needing_rebuild(&self, deadline: Deadline, user: Option<UserId>) -> ServiceResult<u64> {
        let mut uow = self.store.read(deadline).await?;
        let (mut count, mut after) = (0u64, None);
        loop {
            let page = uow.activities_needing_efforts(EFFORTS_VERSION, user, after, 1000).await?;
            count += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(*last),
                _ => return Ok(count),
            }
        }
    }

    /// Recomputes the efforts of every activity with a track (of `user`) whose stored efforts
    /// are older than [`EFFORTS_VERSION`], calling `progress` after each.
    pub async fn rebuild(
        &self,
        deadline: Deadline,
        user: Option<UserId>,
        progress: impl Fn(RebuildProgress) + Send + Sync + 'static,
    ) -> ServiceResult<Rebuilt> {
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
                    match efforts {
                        Some(efforts) => service.write(deadline, id, &efforts).await,
                        None => Err(ServiceError::NotFound),
                    }
                }
            })
            .build();
        let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut fatal = None;
        pipeline
            .drive(self.needing(deadline, user), |_, outcome| {
                match outcome {
                    Outcome::Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Outcome::Err(ServiceError::NotFound) => failed.fetch_add(1, Ordering::Relaxed),
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
    ) -> impl futures::Stream<Item = ActivityId> + Send + 'static {
        let store = self.store.clone();
        let pages = futures::stream::unfold(Some(None), move |after: Option<Option<ActivityId>>| {
            let store = store.clone();
            async move {
                let after = after?;
                let read = async {
                    store.read(deadline).await?.activities_needing_efforts(EFFORTS_VERSION, user, after, PAGE).await
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
