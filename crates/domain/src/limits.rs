//! Rate limits as token buckets, in the form a database row can hold: one timestamp per key.
//!
//! The bucket is the generic cell rate algorithm (GCRA): a key's state is its *theoretical
//! arrival time* (TAT), the moment its bucket would be full again. An attempt at `now` is
//! admitted when `tat − now ≤ (burst − 1) × interval`, and then moves the TAT one interval past
//! `max(tat, now)`; a refused attempt leaves it where it was. One number per key, updated by one
//! comparison, is what lets every replica share a limit through a single atomic upsert (the
//! repository writes the same rule in SQL; [`RateLimit::decide`] is its reference).

use std::time::Duration;

/// `burst` attempts at once, refilled at `burst` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    burst: u32,
    window: Duration,
}

/// What a bucket said to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused; the next attempt is admitted after `retry_after` (at least 1 s, so that a
    /// `Retry-After` header never says 0).
    Refused {
        retry_after: Duration,
    },
}

impl RateLimit {
    /// At most `burst` attempts in any `window`; a burst of zero is read as one.
    pub const fn new(burst: u32, window: Duration) -> Self {
        Self { burst: if burst == 0 { 1 } else { burst }, window }
    }

    pub const fn per_minute(burst: u32) -> Self {
        Self::new(burst, Duration::from_secs(60))
    }

    pub const fn per_hour(burst: u32) -> Self {
        Self::new(burst, Duration::from_secs(3600))
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// The time one token takes to come back, in microseconds (at least 1).
    pub fn interval_us(&self) -> i64 {
        let window = i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX);
        (window / i64::from(self.burst)).max(1)
    }

    /// How far ahead of `now` the TAT may be for an attempt to pass, in microseconds.
    pub fn tolerance_us(&self) -> i64 {
        self.interval_us().saturating_mul(i64::from(self.burst) - 1)
    }

    /// The rule itself: the verdict for an attempt at `now_us` on a bucket whose TAT is `tat_us`
    /// (`None`: a key never seen, or forgotten), and the TAT to store.
    pub fn decide(&self, tat_us: Option<i64>, now_us: i64) -> (Admission, i64) {
        let tat = tat_us.unwrap_or(now_us);
        if tat - now_us > self.tolerance_us() {
            return (self.refusal(tat, now_us), tat);
        }
        (Admission::Admitted, tat.max(now_us).saturating_add(self.interval_us()))
    }

    /// The refusal for a bucket left at `tat_us`: the wait until it admits again.
    pub fn refusal(&self, tat_us: i64, now_us: i64) -> Admission {
        let retry_after =
            Duration::from_micros(self.wait_us(tat_us, now_us).unsigned_abs()).max(Duration::from_secs(1));
        Admission::Refused { retry_after }
    }

    /// Exactly how long, in µs, until a bucket left at `tat_us` admits again (0: it does now).
    pub fn wait_us(&self, tat_us: i64, now_us: i64) -> i64 {
        (tat_us - now_us - self.tolerance_us()).max(0)
    }
}

impl Admission {
    pub fn is_admitted(&self) -> bool {
        matches!(self, Self::Admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn run(limit: RateLimit, attempts_at: &[i64]) -> Vec<bool> {
        let mut tat = None;
        attempts_at
            .iter()
            .map(|&now| {
                let (admission, next) = limit.decide(tat, now);
                tat = Some(next);
                admission.is_admitted()
            })
            .collect()
    }

    #[test]
    fn a_burst_passes_whole_and_the_next_attempt_waits_one_interval() {
        let five_per_quarter = RateLimit::new(5, Duration::from_secs(900));
        assert_eq!(run(five_per_quarter, &[0; 7]), [true, true, true, true, true, false, false]);
        let (_, tat) = (0..5).fold((Admission::Admitted, 0), |(_, tat), _| five_per_quarter.decide(Some(tat), 0));
        assert_eq!(tat, 900 * SECOND, "five tokens of 180 s each");
        let Admission::Refused { retry_after } = five_per_quarter.decide(Some(tat), 0).0 else { panic!() };
        assert_eq!(retry_after, Duration::from_secs(180), "one token back after one interval");
        assert!(five_per_quarter.decide(Some(tat), 180 * SECOND).0.is_admitted());
        assert!(!five_per_quarter.decide(Some(tat), 180 * SECOND - 1).0.is_admitted());
    }

    #[test]
    fn a_refused_attempt_does_not_move_the_bucket() {
        let one_per_minute = RateLimit::per_minute(1);
        let (_, tat) = one_per_minute.decide(None, 0);
        let (admission, after_refusal) = one_per_minute.decide(Some(tat), 30 * SECOND);
        assert_eq!(after_refusal, tat);
        assert_eq!(admission, Admission::Refused { retry_after: Duration::from_secs(30) });
    }

    #[test]
    fn a_steady_rate_at_the_limit_always_passes_and_idle_time_refills_only_the_burst() {
        let sixty = RateLimit::per_minute(60);
        let steady: Vec<i64> = (0..500).map(|i| i * SECOND).collect();
        assert!(run(sixty, &steady).into_iter().all(|admitted| admitted));
        // An hour of quiet gives back 60 tokens, not 3,600.
        let mut at = vec![0];
        at.extend(std::iter::repeat_n(3600 * SECOND, 61));
        assert_eq!(run(sixty, &at).iter().filter(|&&admitted| admitted).count(), 61);
    }

    #[test]
    fn the_wait_is_never_reported_as_zero() {
        let limit = RateLimit::new(2, Duration::from_millis(10));
        let (_, tat) = limit.decide(None, 0);
        let (_, tat) = limit.decide(Some(tat), 0);
        assert_eq!(limit.decide(Some(tat), 0).0, Admission::Refused { retry_after: Duration::from_secs(1) });
    }
}
