//! User statistics: maintained on write, computed concurrently on read, cached.
//!
//! **Write side** ([`record`]): every activity create/update/delete calls it inside the same
//! unit of work, after `bump_stats_version` has locked the user's row — so concurrent writes
//! for one user apply their deltas one after another, and the per-scope totals, day counts and
//! streak runs can never drift from the activities table (tested against a full recount).
//!
//! **Read side** ([`StatsService::stats`]): the three independent parts — totals, current
//! streak, longest streak — are three repository calls on three pooled connections, run
//! concurrently under the request's deadline; the first error drops the others. Each touches
//! O(1) rows. At most `max_concurrent_computations` run at once, so requests that each hold
//! three connections cannot starve the pool (hold-and-wait).
//!
//! **Cache**: moka, with request coalescing (N concurrent misses for one key → one
//! computation). The key includes the user's statistics *version*, which every write bumps in
//! its transaction: a computation that started before a write stores its result under the old
//! version, which no later read asks for, so stale numbers can never shadow newer ones — on this
//! instance or any other that shares the database. An entry holding a current streak expires at
//! the subject's next local midnight, when "today" moves without any write.
//!
//! **Shared tier** (optional, `STRIDE_REDIS_URL`): on a local miss the computation first looks
//! in Redis under the same versioned key, and stores what it computes there. Because keys carry
//! the version, a write on one instance is seen by every other on its next read, with no
//! invalidation messages; a slow or dead Redis only costs a short timeout and a database read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_cache::RedisTier;
use stride_domain::{Activity, RunEdit, StatsScope, TimeZone, UserId, add_day, current_streak, remove_day};
use stride_repository::{StatsRepo, StatsTotals, Store, UnitOfWork};
use stride_workers::Deadline;
use tokio::sync::Semaphore;

use crate::{Clock, ServiceError, ServiceResult, relationship};

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

#[derive(Debug, Clone)]
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

impl StatsConfig {
    /// Leaves a third of the pool for everything else: each computation holds three connections.
    pub fn for_pool_size(pool_size: u32) -> Self {
        Self { max_concurrent_computations: (pool_size as usize * 2 / 3 / 3).max(1), ..Self::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    user: UserId,
    scope: StatsScope,
    version: i64,
}

#[derive(Debug)]
struct Cached {
    stats: UserStats,
    /// The subject's next local midnight: the current streak may change then.
    valid_until: DateTime<Utc>,
}

/// Evicts an entry at the earlier of its TTL and its subject's next local midnight.
struct UntilMidnight {
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl moka::Expiry<CacheKey, Arc<Cached>> for UntilMidnight {
    fn expire_after_create(&self, _: &CacheKey, value: &Arc<Cached>, _: std::time::Instant) -> Option<Duration> {
        let until_midnight = (value.valid_until - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        Some(self.ttl.min(until_midnight))
    }
}

pub struct StatsService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    cache: moka::future::Cache<CacheKey, Arc<Cached>>,
    remote: Option<Arc<RedisTier>>,
    cache_ttl: Duration,
    computations: Arc<Semaphore>,
    computed: Arc<AtomicU64>,
}

impl<S: Clone> Clone for StatsService<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            clock: self.clock.clone(),
            cache: self.cache.clone(),
            remote: self.remote.clone(),
            cache_ttl: self.cache_ttl,
            computations: self.computations.clone(),
            computed: self.computed.clone(),
        }
    }
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
            computed: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many uncached computations ran (each is three repository calls).
    pub fn computations(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// The caller's own statistics. `version` and `timezone` come with authentication, so a
    /// cache hit costs no database round trip of its own.
    pub async fn own(
        &self,
        deadline: Deadline,
        user: UserId,
        timezone: TimeZone,
        version: i64,
    ) -> ServiceResult<UserStats> {
        self.cached(deadline, user, StatsScope::Owner, timezone, version).await
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
        let remote_key = format!("stride:stats:v1:{user}:{}:{version}", scope.as_str());
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
        let result = match found {
            Some(wire) if wire.valid_until > self.clock.now() => Some(wire.into_cached(user)),
            _ => None,
        };
        metrics::counter!("stats_remote_cache_total", "result" => if result.is_some() { "hit" } else { "miss" })
            .increment(1);
        result
    }

    async fn write_remote(&self, key: &str, cached: &Cached) {
        let Some(remote) = &self.remote else { return };
        let until_midnight = (cached.valid_until - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
        let ttl = self.cache_ttl.min(until_midnight);
        if ttl.is_zero() {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(&Wire::from(cached)) {
            remote.set(key, bytes, ttl).await;
        }
    }

    /// Computes without the cache (for benchmarks and diagnostics); still bounded by the
    /// concurrency limit and the deadline.
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
        self.computed.fetch_add(1, Ordering::Relaxed);
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

/// How statistics travel through the shared tier.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    total_activities: u64,
    total_distance_m: f64,
    total_duration_s: u64,
    current_streak_days: u32,
    longest_streak_days: u32,
    as_of: DateTime<Utc>,
    valid_until: DateTime<Utc>,
}

impl From<&Cached> for Wire {
    fn from(cached: &Cached) -> Self {
        let s = &cached.stats;
        Self {
            total_activities: s.total_activities,
            total_distance_m: s.total_distance_m,
            total_duration_s: s.total_duration_s,
            current_streak_days: s.current_streak_days,
            longest_streak_days: s.longest_streak_days,
            as_of: s.as_of,
            valid_until: cached.valid_until,
        }
    }
}

impl Wire {
    fn into_cached(self, user_id: UserId) -> Cached {
        Cached {
            stats: UserStats {
                user_id,
                total_activities: self.total_activities,
                total_distance_m: self.total_distance_m,
                total_duration_s: self.total_duration_s,
                current_streak_days: self.current_streak_days,
                longest_streak_days: self.longest_streak_days,
                as_of: self.as_of,
            },
            valid_until: self.valid_until,
        }
    }
}

/// Accounts for `activity` appearing (`sign` = 1) or disappearing (−1) in every scope that
/// counts it. The caller has already bumped (and so locked) the owner's statistics version.
pub(crate) async fn record<U: UnitOfWork>(uow: &mut U, activity: &Activity, sign: i32) -> ServiceResult<()> {
    let user = activity.user_id;
    let day = activity.local_date().day_number();
    let delta = StatsTotals {
        activities: i64::from(sign),
        distance_mm: i64::from(sign) * (activity.distance.metres() * 1000.0).round() as i64,
        duration_s: i64::from(sign) * i64::from(activity.duration.seconds()),
    };
    for scope in StatsScope::counting(activity.visibility) {
        uow.adjust_totals(user, scope, delta).await?;
        let count = uow.adjust_day(user, scope, day, sign).await?;
        let edits: Vec<RunEdit> = match (sign > 0, count) {
            (true, 1) => {
                let left = uow.run_ending_at(user, scope, day - 1).await?;
                let right = uow.run_starting_at(user, scope, day + 1).await?;
                add_day(day, left, right)
            }
            (false, 0) => {
                let containing =
                    uow.latest_run_starting_by(user, scope, day).await?.filter(|run| run.end >= day).ok_or_else(
                        || ServiceError::Internal(format!("no streak run holds active day {day} of {user}")),
                    )?;
                remove_day(day, containing)
            }
            _ => Vec::new(),
        };
        for edit in edits {
            uow.apply_run_edit(user, scope, edit).await?;
        }
    }
    Ok(())
}

/// Whether an update changes anything statistics count.
pub(crate) fn affects_stats(before: &Activity, after: &Activity) -> bool {
    before.distance != after.distance
        || before.duration != after.duration
        || before.visibility != after.visibility
        || before.local_date() != after.local_date()
}
