//! The queue's use cases for operators and for enqueuing outside a write: list, show,
//! retry, cancel, purge, and the counts behind the gauges.

use std::sync::Arc;
use std::time::Duration;

use stride_concurrency::Deadline;
use stride_domain::{Job, JobId, JobState, NewJob};
use stride_repository::{JobRepo, QueueDepth, Store};

use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult};

use super::to_delta;

/// The queue's use cases: enqueue, and what operators do.
#[derive(Clone)]
pub struct JobService<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: Store> JobService<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Enqueues on its own; to enqueue with other writes, call `JobRepo::enqueue` on their
    /// unit of work. False if a job with the same unique key is not final yet.
    pub async fn enqueue(&self, deadline: Deadline, job: &NewJob) -> ServiceResult<bool> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = uow.enqueue(job, self.clock.now()).await.map_err(Into::into);
        finish(uow, outcome).await
    }

    pub async fn job(&self, deadline: Deadline, id: JobId) -> ServiceResult<Job> {
        let mut uow = self.store.read(deadline).await?;
        uow.job(id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn list(
        &self,
        deadline: Deadline,
        state: Option<JobState>,
        kind: Option<&str>,
        limit: u32,
    ) -> ServiceResult<Vec<Job>> {
        let mut uow = self.store.read(deadline).await?;
        Ok(uow.jobs(state, kind.map(str::to_owned), limit).await?)
    }

    pub async fn counts(&self, deadline: Deadline) -> ServiceResult<Vec<(String, JobState, u64)>> {
        let mut uow = self.store.read(deadline).await?;
        Ok(uow.job_counts().await?)
    }

    pub async fn depths(&self, deadline: Deadline) -> ServiceResult<Vec<QueueDepth>> {
        let mut uow = self.store.read(deadline).await?;
        Ok(uow.queue_depths(self.clock.now()).await?)
    }

    /// A final or retryable job runs again now, with fresh attempts. `NotFound` if there is no
    /// such job or it is available or running.
    pub async fn retry(&self, deadline: Deadline, id: JobId) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            match uow.retry_job(id, self.clock.now()).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(ServiceError::NotFound),
                Err(stride_repository::RepoError::Conflict { .. }) => Err(ServiceError::Conflict {
                    code: "unique_key_taken",
                    message: "another job with this unique key is waiting or running".into(),
                }),
                Err(other) => Err(other.into()),
            }
        }
        .await;
        finish(uow, outcome).await
    }

    /// Deletes jobs finished more than `retention` ago, a batch per unit of work.
    pub async fn purge_finished(&self, deadline: Deadline, retention: Duration) -> ServiceResult<u64> {
        const BATCH: u32 = 500;
        let before = self.clock.now() - to_delta(retention);
        let mut purged = 0;
        loop {
            let mut uow = self.store.write(deadline).await?;
            let outcome = uow.purge_finished_jobs(before, BATCH).await.map_err(Into::into);
            let deleted = finish(uow, outcome).await?;
            purged += deleted;
            if deleted < u64::from(BATCH) {
                return Ok(purged);
            }
        }
    }

    /// Cancels a job that is not final; a running attempt loses its fence and its effects.
    pub async fn cancel(&self, deadline: Deadline, id: JobId) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let outcome =
            async { if uow.cancel_job(id, self.clock.now()).await? { Ok(()) } else { Err(ServiceError::NotFound) } }
                .await;
        finish(uow, outcome).await
    }
}
