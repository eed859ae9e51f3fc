//! Abuse limits that need memory of recent attempts: failed logins per username and
//! registrations per client address.
//!
//! In-process by design: each replica limits on its own, which bounds guessing to
//! `replicas × limit` per window. Every check-and-count is one atomic step on a moka entry
//! (`and_compute_with`), so a burst of concurrent attempts cannot all pass a check before any of
//! them is counted. Time comes from the injected `Clock`, so the rules are tested at pinned
//! instants. Keys are bounded: only strings that parse as usernames are keyed (at most 32
//! bytes), and each cache holds at most `MAX_KEYS` entries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use moka::ops::compute::Op;
use stride_domain::Username;

use crate::{Clock, ServiceError, ServiceResult};

const MAX_KEYS: u64 = 100_000;

fn throttled(until: DateTime<Utc>, now: DateTime<Utc>) -> ServiceError {
    let retry_after = (until - now).to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1));
    ServiceError::Throttled { retry_after }
}

/// Failed logins for one username.
#[derive(Debug, Clone, Copy)]
struct LoginAttempts {
    /// Failures since `window_start`.
    failures: u32,
    /// Attempts reserved and not yet judged: they count against the limit while in flight, so
    /// a burst cannot verify more passwords than the limit allows.
    in_flight: u32,
    window_start: DateTime<Utc>,
    /// Set by the failure that reached the limit; nothing extends it.
    locked_until: Option<DateTime<Utc>>,
}

/// "5 failures, then 15 minutes of 429": the lockout starts at the failure that reaches the
/// limit and lasts `window`; attempts refused with 429 (the right password too) neither count
/// nor extend it.
#[derive(Clone)]
pub(crate) struct LoginThrottle {
    attempts: moka::sync::Cache<Username, LoginAttempts>,
    max_failures: u32,
    window: TimeDelta,
    clock: Arc<dyn Clock>,
}

/// One reserved login attempt. Judge it with [`fail`](Self::fail) or
/// [`succeed`](Self::succeed); dropped unjudged (the request went away), it is given back.
pub(crate) struct LoginAttempt {
    throttle: LoginThrottle,
    username: Option<Username>,
}

impl LoginThrottle {
    pub(crate) fn new(max_failures: u32, window: Duration, clock: Arc<dyn Clock>) -> Self {
        // Entries live at most one window past their last change, which covers a lockout.
        let attempts = moka::sync::Cache::builder().max_capacity(MAX_KEYS).time_to_live(window).build();
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::minutes(15));
        Self { attempts, max_failures: max_failures.max(1), window, clock }
    }

    /// Reserves an attempt for `username`, or refuses with `Throttled`. Names that are not
    /// usernames cannot exist, so they are not keyed (and cannot grow the cache).
    pub(crate) fn reserve(&self, username: &str) -> ServiceResult<LoginAttempt> {
        let Ok(username) = Username::parse(username) else {
            return Ok(LoginAttempt { throttle: self.clone(), username: None });
        };
        let now = self.clock.now();
        let mut refused = None;
        self.attempts.entry(username.clone()).and_compute_with(|entry| {
            let mut attempts = match entry.map(|e| e.into_value()) {
                Some(a) if a.locked_until.is_some_and(|until| until > now) => {
                    refused = a.locked_until;
                    return Op::Nop;
                }
                Some(a) if a.locked_until.is_none() && now - a.window_start < self.window => a,
                // No entry, an ended lockout or an ended window: start afresh.
                Some(a) => LoginAttempts { failures: 0, in_flight: a.in_flight, window_start: now, locked_until: None },
                None => LoginAttempts { failures: 0, in_flight: 0, window_start: now, locked_until: None },
            };
            if attempts.failures + attempts.in_flight >= self.max_failures {
                // The limit is taken by attempts still being verified; one will be judged soon.
                refused = Some(now + TimeDelta::seconds(1));
                return Op::Nop;
            }
            attempts.in_flight += 1;
            Op::Put(attempts)
        });
        match refused {
            Some(until) => Err(throttled(until, now)),
            None => Ok(LoginAttempt { throttle: self.clone(), username: Some(username) }),
        }
    }

    fn judge(&self, username: &Username, failed: bool) {
        let now = self.clock.now();
        self.attempts.entry(username.clone()).and_compute_with(|entry| {
            let Some(mut attempts) = entry.map(|e| e.into_value()) else { return Op::Nop };
            attempts.in_flight = attempts.in_flight.saturating_sub(1);
            if failed {
                attempts.failures += 1;
                if attempts.failures >= self.max_failures && attempts.locked_until.is_none() {
                    attempts.locked_until = Some(now + self.window);
                }
            }
            Op::Put(attempts)
        });
    }
}

impl LoginAttempt {
    pub(crate) fn fail(mut self) {
        if let Some(username) = self.username.take() {
            self.throttle.judge(&username, true);
        }
    }

    /// A success wipes the username's record, as a person who finally remembered deserves.
    pub(crate) fn succeed(mut self) {
        if let Some(username) = self.username.take() {
            self.throttle.attempts.invalidate(&username);
        }
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if let Some(username) = self.username.take() {
            self.throttle.judge(&username, false);
        }
    }
}

/// Registrations per client address in a fixed window (`STRIDE_REGISTRATIONS_PER_HOUR`), so
/// that nobody can enumerate usernames through register's 409 at speed.
#[derive(Clone)]
pub(crate) struct RegistrationLimit {
    counts: moka::sync::Cache<IpAddr, (u32, DateTime<Utc>)>,
    per_window: u32,
    window: TimeDelta,
    clock: Arc<dyn Clock>,
}

impl RegistrationLimit {
    pub(crate) fn new(per_window: u32, window: Duration, clock: Arc<dyn Clock>) -> Self {
        let counts = moka::sync::Cache::builder().max_capacity(MAX_KEYS).time_to_live(window).build();
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::hours(1));
        Self { counts, per_window, window, clock }
    }

    /// Counts one registration attempt from `client`, or refuses it without counting.
    pub(crate) fn admit(&self, client: IpAddr) -> ServiceResult<()> {
        let now = self.clock.now();
        let mut refused = None;
        self.counts.entry(client).and_compute_with(|entry| {
            let (count, start) = match entry.map(|e| e.into_value()) {
                Some((count, start)) if now - start < self.window => (count, start),
                _ => (0, now),
            };
            if count >= self.per_window {
                refused = Some(start + self.window);
                return Op::Nop;
            }
            Op::Put((count + 1, start))
        });
        match refused {
            Some(until) => Err(throttled(until, now)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::test_support::now;

    fn throttle(clock: &Arc<ManualClock>) -> LoginThrottle {
        LoginThrottle::new(5, Duration::from_secs(15 * 60), clock.clone())
    }

    #[test]
    fn a_burst_reserves_at_most_the_limit_before_any_is_judged() {
        let clock = Arc::new(ManualClock::new(now()));
        let throttle = throttle(&clock);
        let reserved: Vec<_> = (0..50).map(|_| throttle.reserve("alice")).collect();
        assert_eq!(reserved.iter().filter(|r| r.is_ok()).count(), 5, "5 verified, 45 refused with 429");
    }

    #[test]
    fn the_lockout_lasts_fifteen_minutes_from_the_fifth_failure_and_refusals_do_not_extend_it() {
        let clock = Arc::new(ManualClock::new(now()));
        let throttle = throttle(&clock);
        for _ in 0..5 {
            throttle.reserve("alice").unwrap().fail();
            clock.advance(TimeDelta::minutes(1));
        }
        // The fifth failure was at minute 4; the lockout ends at minute 19.
        for minute in 5..19 {
            let Err(ServiceError::Throttled { retry_after }) = throttle.reserve("alice") else {
                panic!("minute {minute}: not locked")
            };
            assert_eq!(retry_after, Duration::from_secs(60 * (19 - minute)), "minute {minute}: the real remainder");
            clock.advance(TimeDelta::minutes(1));
        }
        assert!(throttle.reserve("alice").is_ok(), "a lockout that is only retried against still ends");
    }

    #[test]
    fn a_success_forgets_and_names_are_case_insensitive() {
        let clock = Arc::new(ManualClock::new(now()));
        let throttle = throttle(&clock);
        for _ in 0..4 {
            throttle.reserve("Alice").unwrap().fail();
        }
        throttle.reserve("ALICE").unwrap().succeed();
        for _ in 0..4 {
            throttle.reserve("alice").unwrap().fail();
        }
        assert!(throttle.reserve("alice").is_ok(), "4 failures after a success are below the limit");
        assert!(throttle.reserve("bob").is_ok(), "throttling is per username");
    }

    #[test]
    fn an_abandoned_attempt_gives_its_reservation_back() {
        let clock = Arc::new(ManualClock::new(now()));
        let throttle = throttle(&clock);
        for _ in 0..20 {
            drop(throttle.reserve("alice").unwrap());
        }
        assert!(throttle.reserve("alice").is_ok());
    }

    #[test]
    fn strings_that_are_not_usernames_are_never_keyed() {
        let clock = Arc::new(ManualClock::new(now()));
        let throttle = throttle(&clock);
        let huge = "x".repeat(1 << 20);
        for _ in 0..10 {
            throttle.reserve(&huge).unwrap().fail();
        }
        throttle.attempts.run_pending_tasks();
        assert_eq!(throttle.attempts.entry_count(), 0);
    }

    #[test]
    fn registrations_are_limited_per_address_per_window() {
        let clock = Arc::new(ManualClock::new(now()));
        let limit = RegistrationLimit::new(20, Duration::from_secs(3600), clock.clone());
        let (home, office): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..20 {
            limit.admit(home).unwrap();
        }
        let Err(ServiceError::Throttled { retry_after }) = limit.admit(home) else { panic!("not limited") };
        assert_eq!(retry_after, Duration::from_secs(3600));
        assert!(limit.admit(office).is_ok(), "per address");
        clock.advance(TimeDelta::minutes(60));
        assert!(limit.admit(home).is_ok(), "a new window");
    }
}
