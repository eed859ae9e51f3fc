//! Periodic kinds: one pending run of each across every replica, and the queue's gauges.

use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_concurrency::Deadline;
use stride_domain::{JobId, NewJob};
use stride_repository::{JobRepo, QueueDepth, Store};

use crate::uow::finish;
use crate::{Clock, ServiceResult};

/// A job that runs every `every`: [`schedule_periodic`] keeps exactly one pending per kind
/// across every replica (its unique key), due at the next multiple of `every`.
#[derive(Debug, Clone)]
pub struct Periodic {
    pub kind: &'static str,
    pub every: Duration,
    pub max_attempts: u32,
}

/// Enqueues the next run of each periodic job that has none pending; call it on a timer.
pub async fn schedule_periodic<S: Store>(
    store: &S,
    clock: &dyn Clock,
    periodic: &[Periodic],
    deadline: Deadline,
) -> ServiceResult<u32> {
    let now = clock.now();
    let mut uow = store.write(deadline).await?;
    let outcome = async {
        let mut added = 0;
        for job in periodic {
            let every = job.every.as_micros().max(1) as i64;
            let next = (now.timestamp_micros() / every + 1) * every;
            let run_at = DateTime::<Utc>::from_timestamp_micros(next).unwrap_or(now);
            let new = NewJob {
                id: JobId::new(),
                kind: job.kind.to_owned(),
                payload: "{}".to_owned(),
                max_attempts: job.max_attempts,
                run_at,
                unique_key: Some(format!("periodic:{}", job.kind)),
            };
            if uow.enqueue(&new, now).await? {
                added += 1;
            }
        }
        Ok(added)
    }
    .await;
    finish(uow, outcome).await
}

/// Gauges of the queue, refreshed by the server on a timer.
pub fn record_depths(depths: &[QueueDepth], now: DateTime<Utc>) {
    for depth in depths {
        let kind = depth.kind.clone();
        metrics::gauge!("jobs_due", "kind" => kind.clone()).set(depth.due as f64);
        let age = depth.oldest_due.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!("jobs_oldest_due_seconds", "kind" => kind).set(age);
    }
}
