//! The runner: per kind, a claim loop fills a [`WorkerPool`] from the queue; each attempt runs
//! under its kind's timeout with a heartbeat, and ends with one fenced transition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use stride_concurrency::{Deadline, Outcome, WorkerPool};
use stride_domain::{Job, JobId, Lease};
use stride_repository::{JobRepo, RESCUE_NOTE, Store};
use tokio_util::sync::CancellationToken;

use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult};

use super::{JobHandler, JobOutcome, KindConfig, RunReport, RunnerConfig, to_delta};

/// One kind with its handler.
pub struct Registered {
    pub config: KindConfig,
    pub handler: Arc<dyn JobHandler>,
}

/// The runner of every registered kind, until stopped.
pub struct JobRunner<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    kinds: Vec<Registered>,
}

impl<S: Store> JobRunner<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, config: RunnerConfig, kinds: Vec<Registered>) -> Self {
        Self { store, clock, config, kinds }
    }

    /// Runs every kind until `stop`; then stops claiming, lets running attempts finish within
    /// the grace and gives the others' leases back, so another instance takes them at once.
    pub async fn run(self, stop: CancellationToken) -> RunReport {
        // On PostgreSQL an enqueue anywhere wakes the kind's loop at once; the poll remains
        // the fallback (and the only way on SQLite).
        let wakeups = match self.store.job_wakeups().await {
            Ok(wakeups) => wakeups,
            Err(error) => {
                tracing::warn!(%error, "job notifications unavailable; polling only");
                None
            }
        };
        let loops = self.kinds.into_iter().map(|registered| {
            let kind = KindLoop {
                store: self.store.clone(),
                clock: self.clock.clone(),
                config: self.config.clone(),
                kind: registered.config,
                handler: registered.handler,
                wakeups: wakeups.as_ref().map(tokio::sync::broadcast::Receiver::resubscribe),
            };
            kind.run(stop.clone())
        });
        let reports = futures::future::join_all(loops).await;
        reports.into_iter().fold(RunReport::default(), |total, r| RunReport {
            completed: total.completed + r.completed,
            failed: total.failed + r.failed,
            snoozed: total.snoozed + r.snoozed,
            lost_leases: total.lost_leases + r.lost_leases,
            released: total.released + r.released,
        })
    }
}

/// How one attempt ended, as the worker saw it.
#[derive(Debug)]
enum Ended {
    Completed,
    Failed,
    Snoozed,
    LostLease,
}

struct KindLoop<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    kind: KindConfig,
    handler: Arc<dyn JobHandler>,
    /// Kinds of jobs just enqueued anywhere (PostgreSQL); `None`: poll only.
    wakeups: Option<tokio::sync::broadcast::Receiver<String>>,
}

/// Resolves when a job of `kind` was enqueued (or wake-ups were lost, so look anyway); never
/// without a wake-up channel.
async fn enqueued(wakeups: &mut Option<tokio::sync::broadcast::Receiver<String>>, kind: &str) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(receiver) = wakeups else { return std::future::pending().await };
    loop {
        match receiver.recv().await {
            Ok(enqueued) if enqueued == kind => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => {
                *wakeups = None;
                return std::future::pending().await;
            }
        }
    }
}

impl<S: Store> KindLoop<S> {
    async fn run(mut self, stop: CancellationToken) -> RunReport {
        let kind = self.kind.name;
        let context = Arc::new(AttemptContext {
            store: self.store.clone(),
            clock: self.clock.clone(),
            kind: self.kind.clone(),
            handler: self.handler.clone(),
            budget: self.config.statement_budget,
        });
        let attempt_context = context.clone();
        let pool: WorkerPool<Lease, Ended, String> =
            WorkerPool::new(self.kind.concurrency, self.kind.concurrency, move |lease: Lease| {
                let context = attempt_context.clone();
                async move { Ok::<_, String>(context.attempt(lease).await) }
            });
        let mut report = RunReport::default();
        // Which lease each accepted pool job carries: a panic or a shutdown cancellation is
        // reported by pool id, and its attempt must still be recorded.
        let mut in_flight: HashMap<stride_concurrency::JobId, Fence> = HashMap::new();
        let capacity = self.kind.concurrency.max(1);
        loop {
            if stop.is_cancelled() {
                break;
            }
            let free = capacity - in_flight.len();
            let claimed = if free > 0 { self.claim(free).await } else { Vec::new() };
            let idle = claimed.is_empty();
            for lease in claimed {
                let fence = Fence { id: lease.id(), attempt: lease.attempt(), may_retry: lease.may_retry() };
                match pool.submit(lease).await {
                    Ok(id) => {
                        in_flight.insert(id, fence);
                    }
                    Err(_) => self.release(fence.id, fence.attempt).await,
                }
            }
            // Wait for a result, the next poll (when idle or full), or stop.
            let wait = if idle || in_flight.len() >= capacity { self.config.poll_interval } else { Duration::ZERO };
            tokio::select! {
                () = stop.cancelled() => break,
                result = pool.next_result(), if !in_flight.is_empty() => {
                    if let Some((id, outcome)) = result {
                        let fence = in_flight.remove(&id);
                        self.settle(&context, fence, outcome, &mut report).await;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                () = enqueued(&mut self.wakeups, kind) => {}
            }
        }
        // Stop: no more claims; running attempts get the grace, then give their leases back.
        for (id, outcome) in pool.shutdown(Deadline::after(self.config.grace)).await {
            let fence = in_flight.remove(&id);
            self.settle(&context, fence, outcome, &mut report).await;
        }
        tracing::info!(kind, ?report, "job runner stopped");
        report
    }

    async fn claim(&self, limit: usize) -> Vec<Lease> {
        let now = self.clock.now();
        let lease_until = now + to_delta(self.kind.lease());
        let deadline = Deadline::after(self.config.statement_budget);
        let claimed = async {
            let mut uow = self.store.write(deadline).await?;
            let outcome = async {
                let discarded = uow.discard_expired_last(self.kind.name, now).await?;
                let leases = uow.claim(self.kind.name, now, lease_until, limit as u32).await?;
                Ok::<_, stride_repository::RepoError>((discarded, leases))
            }
            .await
            .map_err(ServiceError::from);
            finish(uow, outcome).await
        }
        .await;
        match claimed {
            Ok((discarded, leases)) => {
                for job in discarded {
                    tracing::warn!(job = %job.id, kind = self.kind.name, attempt = job.attempt, "discarded a job whose lease expired on its last attempt");
                    metrics::counter!("jobs_total", "kind" => self.kind.name, "outcome" => "discarded").increment(1);
                    notify_discarded(self.handler.as_ref(), self.kind.name, job, self.config.statement_budget).await;
                }
                for lease in &leases {
                    let rescued = lease
                        .job
                        .last_error
                        .as_deref()
                        .is_some_and(|e| e == format!("{RESCUE_NOTE}{}", lease.attempt().saturating_sub(1)));
                    if rescued {
                        metrics::counter!("jobs_rescued_total", "kind" => self.kind.name).increment(1);
                        tracing::warn!(job = %lease.id(), kind = self.kind.name, attempt = lease.attempt(), "rescued a job whose lease expired");
                    }
                }
                leases
            }
            Err(error) => {
                tracing::warn!(kind = self.kind.name, %error, "claiming jobs failed; retrying at the next poll");
                Vec::new()
            }
        }
    }

    /// Records what the pool reported for an attempt it did not see through itself.
    async fn settle(
        &self,
        context: &AttemptContext<S>,
        fence: Option<Fence>,
        outcome: Outcome<Ended, String>,
        report: &mut RunReport,
    ) {
        match outcome {
            Outcome::Ok(Ended::Completed) => report.completed += 1,
            Outcome::Ok(Ended::Failed) => report.failed += 1,
            Outcome::Ok(Ended::Snoozed) => report.snoozed += 1,
            Outcome::Ok(Ended::LostLease) => report.lost_leases += 1,
            Outcome::Err(_) => report.failed += 1,
            Outcome::Panicked(message) => {
                report.failed += 1;
                if let Some(fence) = fence {
                    // A panic is a failure like any other: retried while attempts remain.
                    let retry_at = fence.may_retry.then(|| context.retry_at(fence.attempt));
                    context.record_failure(fence.id, fence.attempt, &format!("panicked: {message}"), retry_at).await;
                }
            }
            Outcome::Cancelled => {
                if let Some(fence) = fence {
                    self.release(fence.id, fence.attempt).await;
                    report.released += 1;
                }
            }
        }
    }

    /// Gives a lease back: available now, the attempt not counted.
    async fn release(&self, id: JobId, attempt: u32) {
        let deadline = Deadline::after(self.config.statement_budget);
        let released = async {
            let mut uow = self.store.write(deadline).await?;
            let outcome = uow.reschedule(id, attempt, self.clock.now()).await.map_err(ServiceError::from);
            finish(uow, outcome).await
        }
        .await;
        if let Err(error) = released {
            tracing::warn!(job = %id, %error, "could not give a lease back; it will be rescued when it expires");
        }
    }
}

/// Which attempt a pool job carries, so a panic or a cancellation can still be recorded.
#[derive(Debug, Clone, Copy)]
struct Fence {
    id: JobId,
    attempt: u32,
    may_retry: bool,
}

struct AttemptContext<S> {
    store: S,
    clock: Arc<dyn Clock>,
    kind: KindConfig,
    handler: Arc<dyn JobHandler>,
    budget: Duration,
}

impl<S: Store> AttemptContext<S> {
    /// One attempt, start to fenced end.
    async fn attempt(&self, lease: Lease) -> Ended {
        let (id, attempt) = (lease.id(), lease.attempt());
        let may_retry = lease.may_retry();
        let started = std::time::Instant::now();
        let lost = CancellationToken::new();
        let heartbeat = self.heartbeat(id, attempt, lost.clone());
        let deadline = Deadline::after(self.kind.timeout);
        let work = self.handler.run(lease, deadline, lost.clone());
        let result = tokio::select! {
            result = deadline.run(work) => match result {
                Ok(result) => result,
                Err(_) => Err(format!("timed out after {:?} (the {} timeout)", self.kind.timeout, self.kind.name)),
            },
            () = lost.cancelled() => {
                self.count_lost(id);
                return Ended::LostLease;
            }
            () = heartbeat => {
                self.count_lost(id);
                return Ended::LostLease;
            }
        };
        metrics::histogram!("job_run_seconds", "kind" => self.kind.name).record(started.elapsed().as_secs_f64());
        let ended = match result {
            Ok(JobOutcome::Done) => match self.transition(|uow, now| Box::pin(uow.complete(id, attempt, now))).await {
                Some(true) => Ended::Completed,
                Some(false) | None => Ended::LostLease,
            },
            Ok(JobOutcome::Committed) => Ended::Completed,
            Ok(JobOutcome::Snooze(after)) => {
                let at = self.clock.now() + to_delta(after);
                match self.transition(|uow, _| Box::pin(uow.reschedule(id, attempt, at))).await {
                    Some(true) => Ended::Snoozed,
                    Some(false) | None => Ended::LostLease,
                }
            }
            Err(error) => {
                let retry_at = may_retry.then(|| self.retry_at(attempt));
                match self.record_failure(id, attempt, &error, retry_at).await {
                    Some(true) | None => Ended::Failed,
                    Some(false) => Ended::LostLease,
                }
            }
        };
        let outcome = match ended {
            Ended::Completed => "completed",
            Ended::Failed if may_retry => "retryable",
            Ended::Failed => "discarded",
            Ended::Snoozed => "snoozed",
            Ended::LostLease => {
                self.count_lost(id);
                "lost_lease"
            }
        };
        metrics::counter!("jobs_total", "kind" => self.kind.name, "outcome" => outcome).increment(1);
        ended
    }

    /// When a failed attempt runs again: full jitter under the kind's doubling cap.
    fn retry_at(&self, attempt: u32) -> DateTime<Utc> {
        self.clock.now() + to_delta(self.kind.backoff.backoff(attempt))
    }

    fn count_lost(&self, id: JobId) {
        metrics::counter!("jobs_lost_leases_total", "kind" => self.kind.name).increment(1);
        tracing::warn!(job = %id, kind = self.kind.name, "lost the lease: another attempt or an operator owns the job; its effects are dropped");
    }

    /// Renews the lease at a third of its length; returns (ending the attempt) when it is lost.
    async fn heartbeat(&self, id: JobId, attempt: u32, lost: CancellationToken) {
        let lease = self.kind.lease();
        let mut ticks = tokio::time::interval(lease / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let until = self.clock.now() + to_delta(lease);
            match self.transition(|uow, _| Box::pin(uow.heartbeat(id, attempt, until))).await {
                Some(true) => {}
                Some(false) => {
                    lost.cancel();
                    return;
                }
                // A failed heartbeat is retried at the next tick; the lease has slack for it.
                None => {}
            }
        }
    }

    async fn record_failure(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Option<bool> {
        tracing::warn!(job = %id, kind = self.kind.name, attempt, %error, retry_at = ?retry_at, "job attempt failed");
        let error = error.to_owned();
        let recorded = self
            .transition(move |uow, now| Box::pin(async move { uow.fail(id, attempt, &error, retry_at, now).await }))
            .await;
        if retry_at.is_none() && recorded == Some(true) {
            match self.discarded_job(id).await {
                Ok(job) => notify_discarded(self.handler.as_ref(), self.kind.name, job, self.budget).await,
                Err(error) => tracing::warn!(job = %id, %error, "could not read a discarded job back for its handler"),
            }
        }
        recorded
    }

    async fn discarded_job(&self, id: JobId) -> ServiceResult<Job> {
        let mut uow = self.store.read(Deadline::after(self.budget)).await?;
        uow.job(id).await?.ok_or(ServiceError::NotFound)
    }

    /// One fenced statement in its own unit of work: `Some(changed)`, or `None` if the database
    /// could not be reached (logged).
    async fn transition<F>(&self, statement: F) -> Option<bool>
    where
        F: for<'u> FnOnce(&'u mut S::Uow, DateTime<Utc>) -> BoxFuture<'u, stride_repository::RepoResult<bool>> + Send,
    {
        let deadline = Deadline::after(self.budget);
        let now = self.clock.now();
        let result = async {
            let mut uow = self.store.write(deadline).await?;
            let outcome = statement(&mut uow, now).await.map_err(ServiceError::from);
            finish(uow, outcome).await
        }
        .await;
        match result {
            Ok(changed) => Some(changed),
            Err(error) => {
                tracing::warn!(kind = self.kind.name, %error, "a job transition failed");
                None
            }
        }
    }
}

/// Tells a kind's handler that one of its jobs was discarded, within `budget`; a failure is
/// logged (the job stays discarded either way).
async fn notify_discarded(handler: &dyn JobHandler, kind: &'static str, job: Job, budget: Duration) {
    let id = job.id;
    let deadline = Deadline::after(budget);
    match deadline.run(handler.discarded(job, deadline)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(job = %id, kind, %error, "the handler could not settle a discarded job"),
        Err(_) => tracing::warn!(job = %id, kind, "the handler ran out of time settling a discarded job"),
    }
}
