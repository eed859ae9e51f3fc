//! Housekeeping the server runs on a timer: deleting what has expired, so that the tables of
//! sessions, idempotency keys and rate-limit buckets do not grow for ever.

use std::sync::Arc;

use futures::future::BoxFuture;
use stride_concurrency::Deadline;
use stride_repository::{IdempotencyRepo, LimitRepo, RepoResult, SessionRepo, Store, WeatherRepo};

use crate::idempotency::IDEMPOTENCY_WINDOW;
use crate::uow::finish;
use crate::{Clock, ServiceResult};

/// Rows deleted per statement: small enough that one batch never holds SQLite's single writer
/// for long, so requests interleave with a large purge.
const BATCH: u32 = 500;

/// What one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub idempotency_keys: u64,
    pub rate_limit_buckets: u64,
    pub weather_failures: u64,
}

#[derive(Clone)]
pub struct MaintenanceService<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: Store> MaintenanceService<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Deletes expired sessions, idempotency keys past their replay window and rate-limit
    /// buckets that are full again, a batch per unit of work, until a batch comes back short.
    pub async fn purge_expired(&self, deadline: Deadline) -> ServiceResult<Purged> {
        let now = self.clock.now();
        Ok(Purged {
            sessions: self.in_batches(deadline, |uow| Box::pin(uow.delete_expired_sessions(now, BATCH))).await?,
            idempotency_keys: self
                .in_batches(deadline, |uow| {
                    Box::pin(uow.delete_idempotency_keys_before(now - IDEMPOTENCY_WINDOW, BATCH))
                })
                .await?,
            rate_limit_buckets: self.in_batches(deadline, |uow| Box::pin(uow.delete_full_buckets(now, BATCH))).await?,
            weather_failures: self
                .in_batches(deadline, |uow| Box::pin(uow.delete_weather_failures_before(now, BATCH)))
                .await?,
        })
    }

    async fn in_batches<F>(&self, deadline: Deadline, mut batch: F) -> ServiceResult<u64>
    where
        F: for<'u> FnMut(&'u mut S::Uow) -> BoxFuture<'u, RepoResult<u64>>,
    {
        let mut total = 0;
        loop {
            let mut uow = self.store.write(deadline).await?;
            let outcome = batch(&mut uow).await.map_err(Into::into);
            let deleted = finish(uow, outcome).await?;
            total += deleted;
            if deleted < u64::from(BATCH) {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use stride_repository::mocks::{Access, MockUnitOfWork, ready};
    use stride_repository::testing::deadline;

    use super::*;
    use crate::test_support::{clock, now, store_of};

    fn deleting_sessions(count: u64) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        unit.expect_delete_expired_sessions().withf(|at, _| *at == now()).returning(move |_, _| ready(Ok(count)));
        unit.expect_commit().returning(|| ready(Ok(())));
        (Access::Write, unit)
    }

    fn deleting_keys(count: u64) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        unit.expect_delete_idempotency_keys_before()
            .withf(|before, _| *before == now() - IDEMPOTENCY_WINDOW)
            .returning(move |_, _| ready(Ok(count)));
        unit.expect_commit().returning(|| ready(Ok(())));
        (Access::Write, unit)
    }

    fn deleting_weather_failures(count: u64) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        unit.expect_delete_weather_failures_before()
            .withf(|at, _| *at == now())
            .returning(move |_, _| ready(Ok(count)));
        unit.expect_commit().returning(|| ready(Ok(())));
        (Access::Write, unit)
    }

    fn deleting_buckets(count: u64) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        unit.expect_delete_full_buckets().withf(|at, _| *at == now()).returning(move |_, _| ready(Ok(count)));
        unit.expect_commit().returning(|| ready(Ok(())));
        (Access::Write, unit)
    }

    #[tokio::test]
    async fn a_purge_goes_batch_by_batch_until_a_batch_comes_back_short() {
        let full = u64::from(BATCH);
        let store = store_of(vec![
            deleting_sessions(full),
            deleting_sessions(full),
            deleting_sessions(7),
            deleting_keys(3),
            deleting_buckets(4),
            deleting_weather_failures(2),
        ]);
        let purged = MaintenanceService::new(store, clock()).purge_expired(deadline()).await.unwrap();
        assert_eq!(
            purged,
            Purged { sessions: 2 * full + 7, idempotency_keys: 3, rate_limit_buckets: 4, weather_failures: 2 }
        );
    }
}
