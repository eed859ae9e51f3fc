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

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_cache::RedisTier;
use stride_domain::{StatsScope, TimeZone, UserId, current_streak};
use stride_repository::{StatsRepo, Store};
use stride_workers::Deadline;
use tokio::sync::Semaphore;

use self::cache::{CacheKey, Cached, UntilMidnight, Wire};
pub(crate) use self::maintain::{affects_stats, record};
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
        let Caller { user, stats_version } = caller;
        self.cached(deadline, user.id, StatsScope::Owner, user.timezone, *stats_version).await
    }

    /// `subject`'s statistics as `viewer` may see them; `NotFound` if the viewer may not.
    pub async fn of(&self, deadline: Deadline, viewer: UserId, subject: UserId) -> ServiceResult<UserStats> {
        let relationship = relationship(viewer, subject);
        if !crate::access::may_view_stats(relationship) {
            return Err(ServiceError::NotFound);
        }
        let header = {
            let mut uow = self.store.read(deadline).await?;
            uow.stats_subject(subject).await?.ok_or(ServiceError::NotFound)?
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
