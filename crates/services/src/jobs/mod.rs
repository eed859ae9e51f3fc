//! Durable background jobs: the runner, the periodic scheduler, and the operator's commands.
//!
//! The runner is hand-written on the toolkit's [`WorkerPool`], as the mission asks: per kind, a
//! claim loop fills a pool of `concurrency` workers from the `jobs` table; each attempt runs
//! under its kind's timeout (a [`Deadline`]), keeps its lease alive with a heartbeat at a third
//! of the lease, and ends with one fenced transition — completed, retryable after an
//! exponential backoff with full jitter (the toolkit's [`RetryPolicy`]), discarded after its
//! last attempt, or rescheduled (a snooze, or a graceful shutdown giving its lease back). A
//! transition that changes no row means the lease was lost (it expired and another attempt
//! took the job, or an operator cancelled it): the attempt's effects are dropped and the loss
//! is counted. A panicking handler is isolated by the pool and recorded as a failure.
//!
//! Split by concern: [`runner`] claims and runs attempts, [`periodic`] keeps the periodic kinds
//! scheduled, [`admin`] is what operators do (`stride jobs …`); this file holds what they share.

mod admin;
mod periodic;
mod runner;

pub use admin::JobService;
pub use periodic::{Periodic, record_depths, schedule_periodic};
pub use runner::{JobRunner, Registered};

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use stride_concurrency::{Deadline, RetryPolicy};
use stride_domain::{Job, Lease};
use stride_repository::JobRepo;
use tokio_util::sync::CancellationToken;

use crate::ServiceResult;

/// How one kind of job runs.
#[derive(Debug, Clone)]
pub struct KindConfig {
    /// As stored, e.g. `maintenance.purge`.
    pub name: &'static str,
    /// One attempt's budget; past it the attempt is cancelled and recorded as a failure.
    pub timeout: Duration,
    /// Attempts of this kind running at once in one process.
    pub concurrency: usize,
    /// Backoff between attempts: full jitter under `initial × 2^(attempt−1)`, capped.
    pub backoff: RetryPolicy,
    /// The lease of an attempt, renewed by heartbeats at a third of it; `None` for the
    /// default. A long job with a short lease (imports: 30 s) is rescued soon after its
    /// process died, instead of after twice its whole timeout.
    pub lease: Option<Duration>,
}

impl KindConfig {
    /// By default a lease outlives the timeout, so a healthy attempt never loses it between
    /// heartbeats.
    pub fn lease(&self) -> Duration {
        self.lease.unwrap_or(self.timeout * 2 + Duration::from_secs(5))
    }
}

/// What an attempt decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done: the runner records the completion (fenced).
    Done,
    /// Done, and the handler already recorded the completion in its own unit of work with
    /// [`complete_in`] — so its database effect and the completion commit together, once.
    Committed,
    /// Not now: run again after this long; the attempt does not count.
    Snooze(Duration),
}

/// The fenced completion, inside the handler's own unit of work: commit it with the job's
/// effect. `false` means the lease was lost; the handler must then roll back.
pub async fn complete_in<U: JobRepo>(uow: &mut U, lease: &Lease, now: DateTime<Utc>) -> ServiceResult<bool> {
    Ok(uow.complete(lease.id(), lease.attempt(), now).await?)
}

/// Runs one kind of job.
pub trait JobHandler: Send + Sync + 'static {
    /// `deadline` is the kind's timeout; `lost` is cancelled when the lease is lost.
    fn run(
        &self,
        lease: Lease,
        deadline: Deadline,
        lost: CancellationToken,
    ) -> BoxFuture<'static, Result<JobOutcome, String>>;

    /// Called once a job of this kind was discarded for good — its last attempt failed, timed
    /// out or panicked, or its worker died during it and the lease expired — so a handler
    /// whose job promised a result (a status left `pending`) can settle it. Called after the
    /// discard committed, at most once per runner that saw it; it must be idempotent. The
    /// default does nothing.
    fn discarded(&self, job: Job, deadline: Deadline) -> BoxFuture<'static, Result<(), String>> {
        let _ = (job, deadline);
        Box::pin(async { Ok(()) })
    }
}

impl<F> JobHandler for F
where
    F: Fn(Lease, Deadline, CancellationToken) -> BoxFuture<'static, Result<JobOutcome, String>> + Send + Sync + 'static,
{
    fn run(
        &self,
        lease: Lease,
        deadline: Deadline,
        lost: CancellationToken,
    ) -> BoxFuture<'static, Result<JobOutcome, String>> {
        self(lease, deadline, lost)
    }
}

/// The runner's knobs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How often an idle kind looks for due jobs.
    pub poll_interval: Duration,
    /// How long running attempts may finish after stop; the rest give their leases back.
    pub grace: Duration,
    /// The budget of each queue statement (claim, heartbeat, transition).
    pub statement_budget: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            statement_budget: Duration::from_secs(5),
        }
    }
}

/// What the runner did, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub completed: u64,
    pub failed: u64,
    pub snoozed: u64,
    pub lost_leases: u64,
    pub released: u64,
}

pub(crate) fn to_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}
