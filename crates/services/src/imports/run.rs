//! One attempt of `imports.run`: the import's queued items in file order, each committed with
//! its activity (or its failure) in a transaction that first locks the job row at this
//! attempt. A lost lease stops the attempt before its next write; whatever it had not
//! committed is done by the next attempt, from the first item still queued.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use stride_concurrency::{Deadline, RetryPolicy};
use stride_domain::{
    Activity, ActivityId, Import, ImportId, ImportItem, ImportState, ItemState, Job, Lease, Problem, Sport, Visibility,
    track_points_blob,
};
use stride_repository::{BlobKey, ImportRepo, ItemOutcome, RepoError, Store, TrackFile, UnitOfWork, UserRepo};

use crate::uow::finish;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::recorded::{Defaults, Recorded, record};
use super::{IMPORT_KIND, ImportService};
use crate::jobs::{JobHandler, JobOutcome, KindConfig, Registered, complete_in};
use crate::{ServiceError, ServiceResult};

/// An import job's lease: short, so a dead process's import is rescued within half a minute;
/// heartbeats renew it every 10 s.
const LEASE: Duration = Duration::from_secs(30);
/// One attempt's budget: an import of 20 files of 25 MiB parses in well under a minute.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why an attempt stopped early.
pub(super) enum Stop {
    LeaseLost,
    Failed(ServiceError),
    /// The archive as a whole cannot be imported: the import fails, without a retry.
    Archive(Problem),
}

impl From<ServiceError> for Stop {
    fn from(error: ServiceError) -> Self {
        Stop::Failed(error)
    }
}

impl From<RepoError> for Stop {
    fn from(error: RepoError) -> Self {
        Stop::Failed(error.into())
    }
}

pub(super) fn problem(error: &stride_tracks::TrackError) -> Problem {
    Problem::new(error.code(), error.to_string())
}

struct ImportHandler<S>(ImportService<S>);

impl<S: Store> JobHandler for ImportHandler<S> {
    fn run(
        &self,
        lease: Lease,
        deadline: Deadline,
        lost: CancellationToken,
    ) -> BoxFuture<'static, Result<JobOutcome, String>> {
        let service = self.0.clone();
        async move {
            match service.run(&lease, deadline, &lost).await {
                Ok(outcome) => Ok(outcome),
                Err(Stop::LeaseLost) => Err("the lease was lost".to_owned()),
                Err(Stop::Failed(error)) => Err(error.to_string()),
                Err(Stop::Archive(problem)) => Err(problem.message),
            }
        }
        .boxed()
    }

    fn discarded(&self, job: Job, deadline: Deadline) -> BoxFuture<'static, Result<(), String>> {
        let service = self.0.clone();
        async move { service.give_up(&job, deadline).await.map_err(|e| e.to_string()) }.boxed()
    }
}

fn import_of(job: &Job) -> Result<ImportId, ServiceError> {
    let payload: serde_json::Value =
        serde_json::from_str(&job.payload).map_err(|e| ServiceError::Internal(format!("import payload: {e}")))?;
    payload["import_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ServiceError::Internal(format!("import payload without an import id: {}", job.payload)))
}

impl<S: Store> ImportService<S> {
    /// The `imports.run` kind, for the runner.
    pub fn registered(&self) -> Registered {
        Registered {
            config: KindConfig {
                name: IMPORT_KIND,
                timeout: ATTEMPT_TIMEOUT,
                concurrency: 2,
                backoff: RetryPolicy {
                    initial_delay: Duration::from_secs(5),
                    max_delay: Duration::from_secs(600),
                    ..RetryPolicy::default()
                },
                lease: Some(LEASE),
            },
            handler: Arc::new(ImportHandler(self.clone())),
        }
    }

    async fn run(&self, lease: &Lease, deadline: Deadline, lost: &CancellationToken) -> Result<JobOutcome, Stop> {
        let id = import_of(&lease.job)?;
        let Some(import) = self.store.read(deadline).await?.import_by_id(id).await? else {
            return Ok(JobOutcome::Done);
        };
        if !import.state.is_active() {
            return Ok(JobOutcome::Done);
        }
        let home = {
            let mut uow = self.store.read(deadline).await?;
            uow.user_by_id(import.user_id).await?.map(|user| user.timezone.tz()).unwrap_or(chrono_tz::UTC)
        };
        let mut uow = self.fenced(lease).await?;
        let started = uow.start_import(id).await.map_err(ServiceError::from);
        finish(uow, started).await?;
        let defaults = Defaults {
            sport: import.sport.as_deref().and_then(|s| s.parse::<Sport>().ok()),
            visibility: import.visibility.parse::<Visibility>().unwrap_or_default(),
            home,
            now: self.clock.now(),
        };
        if import.archive_key.is_some() {
            return self.run_archive(lease, deadline, lost, import, defaults).await;
        }
        let mut from = 0;
        loop {
            let items = self.store.read(deadline).await?.import_items(id, from, 50).await?;
            let Some(last) = items.last() else { break };
            from = last.index + 1;
            for item in items.iter().filter(|item| item.state == ItemState::Queued) {
                if lost.is_cancelled() {
                    return Err(Stop::LeaseLost);
                }
                let current = self.store.read(deadline).await?.import_by_id(id).await?;
                if current.is_none_or(|current| !current.state.is_active()) {
                    return Ok(JobOutcome::Done);
                }
                self.import_item(lease, deadline, &import, item, Defaults { now: self.clock.now(), ..defaults })
                    .await?;
            }
        }
        let now = self.clock.now();
        let mut uow = self.fenced(lease).await?;
        let done = async {
            uow.finish_import(id, ImportState::Done, None, now).await?;
            complete_in(&mut uow, lease, now).await
        }
        .await;
        finish(uow, done).await?;
        Ok(JobOutcome::Committed)
    }

    /// A write unit of work that holds this attempt's job row locked; `LeaseLost` when the
    /// attempt no longer owns the job.
    pub(super) async fn fenced(&self, lease: &Lease) -> Result<S::Uow, Stop> {
        let mut uow = self.store.write(Deadline::after(Duration::from_secs(30))).await?;
        if !uow.hold_lease(lease.id(), lease.attempt()).await? {
            uow.rollback().await?;
            return Err(Stop::LeaseLost);
        }
        Ok(uow)
    }

    async fn import_item(
        &self,
        lease: &Lease,
        deadline: Deadline,
        import: &Import,
        item: &ImportItem,
        defaults: Defaults,
    ) -> Result<(), Stop> {
        let key = BlobKey::parse(&item.blob_key).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sent = match self.storage.get(&key, deadline).await {
            Ok(sent) => sent,
            Err(ServiceError::NotFound) => {
                let gone = Problem::new("missing_file", "the uploaded file is no longer stored");
                return self.settle(lease, item, ItemOutcome::Failed(gone), None).await;
            }
            Err(error) => return Err(error.into()),
        };
        let inflated = self
            .cpu
            .run(move || {
                stride_tracks::inflate(&sent).map(|plain| {
                    let plain = match plain {
                        Cow::Borrowed(_) => sent.clone(),
                        Cow::Owned(bytes) => Bytes::from(bytes),
                    };
                    let sha = stride_tracks::sha256(&plain);
                    (plain, sha)
                })
            })
            .await?;
        let (plain, sha) = match inflated {
            Ok(ok) => ok,
            Err(error) => return self.settle(lease, item, ItemOutcome::Failed(problem(&error)), Some(&key)).await,
        };
        let earlier = self.store.read(deadline).await?.activity_with_file(import.user_id, &sha).await?;
        if let Some(activity) = earlier {
            return self.settle(lease, item, ItemOutcome::Duplicate(activity), Some(&key)).await;
        }
        let recorded =
            self.cpu.run(move || stride_tracks::parse(&plain).and_then(|track| record(track, defaults))).await?;
        match recorded {
            Ok(recorded) => self.insert(lease, deadline, import, item, recorded, sha).await,
            Err(error) => self.settle(lease, item, ItemOutcome::Failed(problem(&error)), Some(&key)).await,
        }
    }

    /// An item that made no activity; its stored file is no longer needed.
    pub(super) async fn settle(
        &self,
        lease: &Lease,
        item: &ImportItem,
        outcome: ItemOutcome,
        file: Option<&BlobKey>,
    ) -> Result<(), Stop> {
        let mut uow = self.fenced(lease).await?;
        let settled = uow.settle_item(item.import_id, item.index, &outcome, &[]).await.map_err(ServiceError::from);
        finish(uow, settled).await?;
        if let Some(file) = file {
            self.storage.delete_all(std::slice::from_ref(file), Deadline::after(Duration::from_secs(30))).await;
        }
        Ok(())
    }

    async fn insert(
        &self,
        lease: &Lease,
        deadline: Deadline,
        import: &Import,
        item: &ImportItem,
        recorded: Recorded,
        sha: [u8; 32],
    ) -> Result<(), Stop> {
        let id = ActivityId::new();
        let points = BlobKey::parse(&track_points_blob(id)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        self.storage
            .put(&points, Bytes::from(recorded.points), "application/octet-stream", deadline, &cancel, &attempts)
            .await?;
        let now = self.clock.now();
        let efforts = recorded.efforts;
        let activity = Activity::recorded(id, import.user_id, recorded.draft, recorded.source, recorded.summary, now);
        let file = TrackFile {
            activity_id: id,
            user_id: import.user_id,
            sha256: sha.to_vec(),
            name: item.name.clone(),
            blob_key: item.blob_key.clone(),
            bytes: item.bytes,
        };
        let mut uow = self.fenced(lease).await?;
        let written = async {
            // The same bytes committed since the check (another import of the user's).
            if let Some(earlier) = uow.activity_with_file(file.user_id, &file.sha256).await? {
                uow.settle_item(item.import_id, item.index, &ItemOutcome::Duplicate(earlier), &[]).await?;
                return Ok(false);
            }
            self.writes.insert_recorded(&mut uow, activity, &efforts, now).await?;
            uow.insert_track_file(&file).await?;
            if !uow.settle_item(item.import_id, item.index, &ItemOutcome::Imported(id), &[]).await? {
                // Cancelled meanwhile: nothing of this item stays.
                return Err(ServiceError::Conflict { code: "cancelled", message: "the item was cancelled".into() });
            }
            Ok(true)
        }
        .await;
        let outcome = finish(uow, written).await;
        if matches!(outcome, Ok(false) | Err(ServiceError::Conflict { code: "cancelled", .. })) {
            // Known not imported (a duplicate, a cancel): the points are nobody's. After an
            // unknown outcome they stay; gc removes them if no activity names them.
            self.storage.delete_all(std::slice::from_ref(&points), deadline).await;
        }
        match outcome {
            Ok(_) | Err(ServiceError::Conflict { code: "cancelled", .. }) => Ok(()),
            Err(error) => Err(Stop::Failed(error)),
        }
    }

    /// After the last attempt failed: the import fails as a whole, naming why, and its items
    /// still queued with it.
    async fn give_up(&self, job: &Job, deadline: Deadline) -> ServiceResult<()> {
        let id = import_of(job)?;
        let why = job.last_error.clone().unwrap_or_else(|| "the import job gave up".into());
        let problem =
            Problem::new("import_failed", format!("the import stopped after {} attempts: {why}", job.attempt));
        let mut uow = self.store.write(deadline).await?;
        if uow.finish_import(id, ImportState::Failed, Some(&problem), self.clock.now()).await? {
            uow.fail_queued_items(id, &problem).await?;
        }
        uow.commit().await?;
        Ok(())
    }
}
