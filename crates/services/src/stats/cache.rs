//! The statistics cache: what is cached under which key, when an entry stops being true, and
//! how entries travel through the shared Redis tier.
//!
//! Keys carry the subject's statistics *version*, which every write bumps in its transaction:
//! a computation that started before a write stores its result under the old version, which no
//! later read asks for, so stale numbers never shadow newer ones, on this instance or any other
//! that shares the database. An entry holding a current streak expires at the subject's next
//! local midnight, when "today" moves without any write.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_domain::{StatsScope, UserId};

use super::UserStats;
use crate::Clock;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    pub(super) user: UserId,
    pub(super) scope: StatsScope,
    pub(super) version: i64,
}

#[derive(Debug)]
pub(super) struct Cached {
    pub(super) stats: UserStats,
    /// The subject's next local midnight: the current streak may change then.
    pub(super) valid_until: DateTime<Utc>,
}

impl CacheKey {
    /// The same key in the shared tier; `v1` names the wire format below.
    pub(super) fn remote(&self) -> String {
        format!("stride:stats:v1:{}:{}:{}", self.user, self.scope.as_str(), self.version)
    }
}

impl Cached {
    /// How long the entry stays true from now: the TTL, or less if midnight comes first.
    pub(super) fn time_to_live(&self, ttl: Duration, clock: &dyn Clock) -> Duration {
        let until_midnight = (self.valid_until - clock.now()).to_std().unwrap_or(Duration::ZERO);
        ttl.min(until_midnight)
    }
}

/// Evicts an entry at the earlier of its TTL and its subject's next local midnight.
pub(super) struct UntilMidnight {
    pub(super) ttl: Duration,
    pub(super) clock: Arc<dyn Clock>,
}

impl moka::Expiry<CacheKey, Arc<Cached>> for UntilMidnight {
    fn expire_after_create(&self, _: &CacheKey, value: &Arc<Cached>, _: std::time::Instant) -> Option<Duration> {
        Some(value.time_to_live(self.ttl, self.clock.as_ref()))
    }
}

/// How statistics travel through the shared tier.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Wire {
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
    /// The entry, if it is still true at `now`.
    pub(super) fn fresh_at(self, now: DateTime<Utc>, user_id: UserId) -> Option<Cached> {
        (self.valid_until > now).then(|| self.into_cached(user_id))
    }

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
