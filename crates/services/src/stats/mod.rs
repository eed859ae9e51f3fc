//! User statistics: maintained on write ([`maintain`]), computed concurrently on read (here),
//! cached ([`cache`]).
//!
//! **Read side** ([`StatsService::own`], [`StatsService::of`]): the three independent parts —
//! totals, current streak, longest streak — are three repository calls on three pooled
//! connections, run concurrently under the request's deadline; the first error drops the
//! others. Each touches O(1) rows. At most `max_concurrent_computations` run at once, so
//! requests that each hold three connections cannot starve the pool (hold-and-wait).
//!
//! **Cache**: moka, with request coalescing (N concurrent misses for one key → one
//! computation), keyed by the subject's statistics version.
//!
//! **Shared tier** (optional, `STRIDE_REDIS_URL`): on a local miss the computation first looks
//! in Redis under the same versioned key, and stores what it computes there. Because keys carry
//! the version, a write on one instance is seen by every other on its next read, with no
//! invalidation messages; a slow or dead Redis only costs a short timeout and a database read.

mod cache;
mod maintain;
mod weekly;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_cache::RedisTier;
use stride_concurrency::Deadline;
use stride_domain::{StatsScope, TimeZone, UserId, current_streak};
use stride_repository::{StatsRepo, Store};
use tokio::sync::Semaphore;

use self::cache::{CacheKey, Cached, UntilMidnight, Wire};
pub(crate) use self::maintain::{affects_stats, record};
pub use self::weekly::{MAX_WEEKS, WeekTotals, WeeklyStats};
use crate::{Caller, Clock, ServiceError, ServiceResult, relationship};

/// A user's statistics as one viewer may see them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserStats {
    pub user_id: UserId,
    pub total_activities: u64,
    pub total_distance_m: f64,
    pub total_duration_s: u64,
    pub current_streak_days: u32,
    pub longest_streak_days: u32,
    pub as_of: DateTime<Utc>,
}

/// `Debug` redacts a password in the Redis URL.
#[derive(Clone)]
pub struct StatsConfig {
    pub cache_ttl: Duration,
    pub cache_capacity: u64,
    /// Uncached computations allowed at once; each holds three connections.
    pub max_concurrent_computations: usize,
    /// The shared Redis tier, if any.
    pub redis_url: Option<String>,
    /// Bounds every Redis interaction; past it, the database answers.
    pub redis_timeout: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 100_000,
            max_concurrent_computations: 3,
            redis_url: None,
            redis_timeout: Duration::from_millis(100),
        }
    }
}

impl std::fmt::Debug for StatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsConfig")
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("max_concurrent_computations", &self.max_concurrent_computations)
            .field("redis_url", &self.redis_url.as_deref().map(stride_repository::redact))
            .field("redis_timeout", &self.redis_timeout)
            .finish()
    }
}

impl StatsConfig {
    /// Leaves a third of the pool for everything else: each computation holds three connections.
    pub fn for_pool_size(pool_size: u32) -> Self {
        Self { max_concurrent_computations: (pool_size as usize * 2 / 3 / 3).max(1), ..Self::default() }
    }
}

#[derive(Clone)]
pub struct StatsService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    /// Shared by every clone (moka's cache is a handle). moka owns its own locking, and its
    /// `try_get_with` is what coalesces concurrent misses for one key into one computation.
    cache: moka::future::Cache<CacheKey, Arc<Cached>>,
    /// The shared tier, if configured; `None` means this instance caches alone.
    remote: Option<Arc<RedisTier>>,
    cache_ttl: Duration,
    /// Bounds uncached computations. An async semaphore, because a permit is held across the
    /// three concurrent reads; each computation takes one before any connection.
    computations: Arc<Semaphore>,
    /// Counts computations so tests can prove coalescing and hits (`testing` feature).
    #[cfg(feature = "testing")]
    computed: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: Store> StatsService<S> {
    /// Fails only on a malformed Redis URL; an unreachable Redis is not an error.
    pub fn new(store: S, clock: Arc<dyn Clock>, config: StatsConfig) -> ServiceResult<Self> {
        let remote = match &config.redis_url {
            Some(url) => Some(Arc::new(
                RedisTier::new(url, config.max_concurrent_computations * 4, config.redis_timeout)
                    .map_err(|e| ServiceError::Invalid { field: "STRIDE_REDIS_URL", message: e })?,
            )),
            None => None,
        };
        let cache = moka::future::Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(UntilMidnight { ttl: config.cache_ttl, clock: clock.clone() })
            .build();
        Ok(Self {
            store,
            clock,
            cache,
            remote,
            cache_ttl: config.cache_ttl,
            computations: Arc::new(Semaphore::new(config.max_concurrent_computations.max(1))),
            #[cfg(feature = "testing")]
            computed: Default::default(),
        })
    }

    /// How many uncached computations ran (each is three repository calls).
    #[cfg(feature = "testing")]
    pub fn computations(&self) -> u64 {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The caller's own statistics. The version and time zone came with authentication, so a
    /// cache hit costs no database round trip of its own.
    pub async fn own(&self, deadline: Deadline, caller: &Caller) -> ServiceResult<UserStats> {
        let Caller { user, stats_version, .. } = caller;
        self.cached(deadline, user.id, StatsScope::Owner, user.timezone, *stats_version).await
    }

    /// `subject`'s statistics as `viewer` may see them; `NotFound` if the viewer may not.
    pub async fn of(&self, deadline: Deadline, viewer: UserId, subject: UserId) -> ServiceResult<UserStats> {
        let (relationship, header) = {
            let mut uow = self.store.read(deadline).await?;
            let relationship = relationship(&mut uow, viewer, subject).await?;
            if !relationship.may_view_stats() {
                return Err(ServiceError::NotFound);
            }
            (relationship, uow.stats_subject(subject).await?.ok_or(ServiceError::NotFound)?)
        };
        let scope = StatsScope::for_relationship(relationship);
        self.cached(deadline, subject, scope, header.timezone, header.version).await
    }

    async fn cached(
        &self,
        deadline: Deadline,
        user: UserId,
        scope: StatsScope,
        timezone: TimeZone,
        version: i64,
    ) -> ServiceResult<UserStats> {
        let key = CacheKey { user, scope, version };
        if let Some(hit) = self.cache.get(&key).await {
            // moka's clock is real time; the injected clock decides correctness.
            if hit.valid_until > self.clock.now() {
                metrics::counter!("stats_cache_total", "result" => "hit").increment(1);
                return Ok(hit.stats.clone());
            }
            self.cache.invalidate(&key).await;
        }
        metrics::counter!("stats_cache_total", "result" => "miss").increment(1);
        let remote_key = key.remote();
        let computed = self
            .cache
            .try_get_with(key, async {
                if let Some(shared) = self.read_remote(&remote_key, user).await {
                    return Ok(Arc::new(shared));
                }
                let cached = self.compute(deadline, user, scope, timezone).await?;
                self.write_remote(&remote_key, &cached).await;
                Ok(Arc::new(cached))
            })
            .await
            .map_err(|shared: Arc<ServiceError>| (*shared).clone())?;
        Ok(computed.stats.clone())
    }

    async fn read_remote(&self, key: &str, user: UserId) -> Option<Cached> {
        let remote = self.remote.as_ref()?;
        let found = remote.get(key).await.and_then(|bytes| serde_json::from_slice::<Wire>(&bytes).ok());
        let result = found.and_then(|wire| wire.fresh_at(self.clock.now(), user));
        metrics::counter!("stats_remote_cache_total", "result" => if result.is_some() { "hit" } else { "miss" })
            .increment(1);
        result
    }

    async fn write_remote(&self, key: &str, cached: &Cached) {
        let Some(remote) = &self.remote else { return };
        let ttl = cached.time_to_live(self.cache_ttl, self.clock.as_ref());
        if ttl.is_zero() {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(&Wire::from(cached)) {
            remote.set(key, bytes, ttl).await;
        }
    }

    /// Computes without the cache (for benchmarks); still bounded by the concurrency limit and
    /// the deadline.
    #[cfg(feature = "testing")]
    pub async fn compute_uncached(
        &self,
        deadline: Deadline,
        user: UserId,
        scope: StatsScope,
        timezone: TimeZone,
    ) -> ServiceResult<UserStats> {
        Ok(self.compute(deadline, user, scope, timezone).await?.stats)
    }

    async fn compute(
        &self,
        deadline: Deadline,
        user: UserId,
        scope: StatsScope,
        timezone: TimeZone,
    ) -> ServiceResult<Cached> {
        let _slot = deadline
            .run(self.computations.acquire())
            .await?
            .map_err(|_| ServiceError::Internal("the stats limiter was closed".into()))?;
        #[cfg(feature = "testing")]
        self.computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = self.clock.now();
        let today = stride_domain::LocalDate::new(timezone.today(now)).day_number();
        let store = &self.store;
        let (totals, latest_run, longest_run) = tokio::try_join!(
            async { store.read(deadline).await?.stats_totals(user, scope).await },
            async { store.read(deadline).await?.latest_run_starting_by(user, scope, today).await },
            async { store.read(deadline).await?.longest_run(user, scope).await },
        )?;
        let stats = UserStats {
            user_id: user,
            total_activities: totals.activities.max(0) as u64,
            total_distance_m: totals.distance_mm as f64 / 1000.0,
            total_duration_s: totals.duration_s.max(0) as u64,
            current_streak_days: current_streak(latest_run, today),
            longest_streak_days: longest_run.map_or(0, |run| run.days()),
            as_of: now,
        };
        Ok(Cached { stats, valid_until: timezone.next_midnight_after(now) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use stride_domain::StreakRun;
    use stride_repository::mocks::{Access, MockStore, MockUnitOfWork, MockUnits, ready};
    use stride_repository::testing::deadline;
    use stride_repository::{RepoError, StatsTotals};

    use super::*;
    use crate::test_support::{clock, now, person};

    /// Counts the reads of the three statistics parts, across every unit of work.
    #[derive(Default)]
    struct Reads {
        totals: AtomicUsize,
        latest_run: AtomicUsize,
        longest_run: AtomicUsize,
    }

    /// A unit of work that can answer any one of the three parts (a computation opens three,
    /// one per part, concurrently, in no fixed order).
    fn any_part(reads: &Arc<Reads>) -> MockUnitOfWork {
        let mut unit = MockUnitOfWork::new();
        let today = stride_domain::LocalDate::new(now().date_naive()).day_number();
        let counted = reads.clone();
        unit.expect_stats_totals().times(0..=1).returning(move |_, _| {
            counted.totals.fetch_add(1, Ordering::SeqCst);
            ready(Ok(StatsTotals { activities: 3, distance_mm: 15_000_000, duration_s: 5400 }))
        });
        let counted = reads.clone();
        unit.expect_latest_run_starting_by().times(0..=1).returning(move |_, _, _| {
            counted.latest_run.fetch_add(1, Ordering::SeqCst);
            ready(Ok(Some(StreakRun { start: today - 2, end: today })))
        });
        let counted = reads.clone();
        unit.expect_longest_run().times(0..=1).returning(move |_, _| {
            counted.longest_run.fetch_add(1, Ordering::SeqCst);
            ready(Ok(Some(StreakRun { start: today - 10, end: today - 5 })))
        });
        unit
    }

    fn reading(units: usize, reads: &Arc<Reads>) -> StatsService<MockStore> {
        let mut mock = MockUnits::new();
        let reads = reads.clone();
        mock.expect_open()
            .withf(|access| *access == Access::Read)
            .times(units)
            .returning(move |_| Ok(any_part(&reads)));
        StatsService::new(MockStore::new(mock), clock(), StatsConfig::default()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_computation_of_three_reads() {
        let reads = Arc::new(Reads::default());
        let stats = reading(3, &reads);
        let caller = Caller { user: person("alice"), stats_version: 4, social_version: 0 };
        let results = futures::future::join_all((0..25).map(|_| stats.own(deadline(), &caller))).await;
        for result in results {
            let got = result.unwrap();
            assert_eq!((got.total_activities, got.total_distance_m, got.total_duration_s), (3, 15_000.0, 5400));
            assert_eq!((got.current_streak_days, got.longest_streak_days), (3, 6));
        }
        let counts = [&reads.totals, &reads.latest_run, &reads.longest_run].map(|c| c.load(Ordering::SeqCst));
        assert_eq!(counts, [1, 1, 1], "25 concurrent misses, one read of each part");
    }

    #[tokio::test]
    async fn a_new_version_is_a_new_key_and_an_old_one_is_still_a_hit() {
        let reads = Arc::new(Reads::default());
        let stats = reading(6, &reads);
        let alice = person("alice");
        for version in [1, 1, 2, 2, 1] {
            stats
                .own(deadline(), &Caller { user: alice.clone(), stats_version: version, social_version: 0 })
                .await
                .unwrap();
        }
        assert_eq!(reads.totals.load(Ordering::SeqCst), 2, "one computation per version");
    }

    #[tokio::test]
    async fn a_strangers_statistics_are_not_found_after_one_relationship_query() {
        for tie in [stride_domain::Tie::None, stride_domain::Tie::Blocked] {
            let mut mock = MockUnits::new();
            mock.expect_open().times(1).returning(move |_| {
                let mut unit = MockUnitOfWork::new();
                unit.expect_tie().times(1).returning(move |_, _| ready(Ok(tie)));
                // No statistics read: a stranger's numbers are never computed.
                Ok(unit)
            });
            let stats = StatsService::new(MockStore::new(mock), clock(), StatsConfig::default()).unwrap();
            let got = stats.of(deadline(), person("alice").id, person("bob").id).await;
            assert!(matches!(got, Err(ServiceError::NotFound)), "{got:?}");
        }
    }

    #[tokio::test]
    async fn a_failing_part_fails_the_computation_and_is_not_cached() {
        let mut mock = MockUnits::new();
        let failures = Arc::new(AtomicUsize::new(0));
        let counted = failures.clone();
        mock.expect_open().returning(move |_| {
            let mut unit = MockUnitOfWork::new();
            let counted = counted.clone();
            unit.expect_stats_totals().returning(move |_, _| {
                counted.fetch_add(1, Ordering::SeqCst);
                ready(Err(RepoError::Timeout))
            });
            unit.expect_latest_run_starting_by().returning(|_, _, _| ready(Ok(None)));
            unit.expect_longest_run().returning(|_, _| ready(Ok(None)));
            Ok(unit)
        });
        let stats = StatsService::new(MockStore::new(mock), clock(), StatsConfig::default()).unwrap();
        let caller = Caller { user: person("alice"), stats_version: 1, social_version: 0 };
        for _ in 0..2 {
            let got = stats.own(deadline(), &caller).await;
            assert!(matches!(got, Err(ServiceError::Timeout)), "{got:?}");
        }
        assert_eq!(failures.load(Ordering::SeqCst), 2, "an error is never served from the cache");
    }

    #[test]
    fn an_update_that_changes_nothing_counted_leaves_statistics_alone() {
        let alice = person("alice");
        let before = crate::test_support::activity_of(&alice, stride_domain::Visibility::Public);
        let mut retitled = before.clone();
        retitled.title = stride_domain::Title::parse("Renamed").unwrap();
        assert!(!affects_stats(&before, &retitled));
        let mut hidden = before.clone();
        hidden.visibility = stride_domain::Visibility::Private;
        assert!(affects_stats(&before, &hidden));
    }
}
