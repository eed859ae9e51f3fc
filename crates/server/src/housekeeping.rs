//! The server's background work, started with serving and joined before the pools close: the
//! durable job runner (every kind Stride runs), the periodic scheduler that keeps one pending
//! run of each periodic kind across every replica, and the queue's gauges.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use stride_concurrency::RetryPolicy;
use stride_domain::Lease;
use stride_repository::Store;
use stride_services::jobs::{
    JobHandler, JobOutcome, JobRunner, JobService, KindConfig, Periodic, Registered, RunnerConfig, record_depths,
    schedule_periodic,
};
use stride_services::{Clock, Deadline, Stride};
use tokio_util::sync::CancellationToken;

/// Built at launch, while the store's type is known; started with a token that stops it.
pub(crate) type Housekeeping = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Finished jobs are kept this long for `stride jobs list`, then purged.
pub(crate) const JOB_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Every kind Stride runs, with its timeout (README lists them; attempts are the job's own,
/// set where it is enqueued: [`periodic`] for these). `weather.enrich` runs when the weather
/// feature is on.
pub(crate) fn kinds<S: Store>(stride: &Stride<S>) -> Vec<Registered> {
    let backoff = RetryPolicy {
        initial_delay: Duration::from_secs(5),
        max_delay: Duration::from_secs(3600),
        ..RetryPolicy::default()
    };
    let maintenance = stride.maintenance.clone();
    let purge_sessions: Arc<dyn JobHandler> = Arc::new(move |_: Lease, deadline: Deadline, _: CancellationToken| {
        let maintenance = maintenance.clone();
        async move {
            let purged = maintenance.purge_expired(deadline).await.map_err(|e| e.to_string())?;
            tracing::info!(
                sessions = purged.sessions,
                idempotency_keys = purged.idempotency_keys,
                rate_limit_buckets = purged.rate_limit_buckets,
                weather_failures = purged.weather_failures,
                "purged expired rows"
            );
            Ok(JobOutcome::Done)
        }
        .boxed()
    });
    let jobs = stride.jobs.clone();
    let purge_jobs: Arc<dyn JobHandler> = Arc::new(move |_: Lease, deadline: Deadline, _: CancellationToken| {
        let jobs = jobs.clone();
        async move {
            let purged = jobs.purge_finished(deadline, JOB_RETENTION).await.map_err(|e| e.to_string())?;
            tracing::info!(jobs = purged, "purged finished jobs");
            Ok(JobOutcome::Done)
        }
        .boxed()
    });
    let (photos, imports) = (stride.photos.clone(), stride.imports.clone());
    let photo_gc: Arc<dyn JobHandler> = Arc::new(move |_: Lease, deadline: Deadline, _: CancellationToken| {
        let (photos, imports) = (photos.clone(), imports.clone());
        async move {
            let (scanned, removed) = photos.collect_garbage(deadline, false).await.map_err(|e| e.to_string())?;
            tracing::info!(scanned, removed = removed.len(), "collected orphaned photo files");
            let (scanned, removed) = imports.collect_garbage(deadline, false).await.map_err(|e| e.to_string())?;
            tracing::info!(scanned, removed = removed.len(), "collected orphaned import files and track points");
            Ok(JobOutcome::Done)
        }
        .boxed()
    });
    let photos = stride.photos.clone();
    let delete_blobs: Arc<dyn JobHandler> = Arc::new(move |lease: Lease, deadline: Deadline, _: CancellationToken| {
        let photos = photos.clone();
        async move {
            let deleted = photos.run_delete_blobs(&lease.job.payload, deadline).await?;
            tracing::debug!(deleted, "deleted the blobs of deleted photos");
            Ok(JobOutcome::Done)
        }
        .boxed()
    });
    let kind = |name, timeout_secs, handler| Registered {
        config: KindConfig { name, timeout: Duration::from_secs(timeout_secs), concurrency: 1, backoff, lease: None },
        handler,
    };
    let mut kinds = vec![
        kind("maintenance.purge", 120, purge_sessions),
        kind("jobs.purge", 120, purge_jobs),
        kind("photos.gc", 600, photo_gc),
        kind(stride_services::photos::DELETE_BLOBS_KIND, 120, delete_blobs),
    ];
    kinds.push(stride.imports.registered());
    kinds.push(stride.records.registered());
    kinds.extend(stride.weather.as_ref().map(|weather| weather.registered()));
    kinds
}

/// The periodic kinds and how often each runs.
pub(crate) fn periodic(purge_every: Duration) -> Vec<Periodic> {
    vec![
        Periodic { kind: "maintenance.purge", every: purge_every, max_attempts: 5 },
        Periodic { kind: "jobs.purge", every: Duration::from_secs(3600), max_attempts: 5 },
        Periodic { kind: "photos.gc", every: Duration::from_secs(24 * 3600), max_attempts: 5 },
    ]
}

/// Runs the job runner and the scheduler until `stop`; the runner then lets running attempts
/// finish within its grace and gives the other leases back.
pub(crate) async fn background<S: Store>(
    store: S,
    clock: Arc<dyn Clock>,
    kinds: Vec<Registered>,
    periodic: Vec<Periodic>,
    runner: RunnerConfig,
    stop: CancellationToken,
) {
    let jobs = JobService::new(store.clone(), clock.clone());
    let scheduler = {
        let (store, clock, stop) = (store.clone(), clock.clone(), stop.clone());
        async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(30));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                let deadline = Deadline::after(Duration::from_secs(10));
                if let Err(error) = schedule_periodic(&store, clock.as_ref(), &periodic, deadline).await {
                    tracing::warn!(%error, "scheduling periodic jobs failed; retrying at the next tick");
                }
                match jobs.depths(deadline).await {
                    Ok(depths) => record_depths(&depths, clock.now()),
                    Err(error) => tracing::debug!(%error, "reading queue depths failed"),
                }
            }
        }
    };
    let runner = JobRunner::new(store, clock, runner, kinds).run(stop);
    tokio::join!(runner, scheduler);
}
