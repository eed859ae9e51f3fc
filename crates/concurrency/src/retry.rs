//! Retrying transient failures with exponential backoff and full jitter.
//!
//! Written here rather than taken from `backon` because Stride needs three things together:
//! *full* jitter (a uniformly random delay in `[0, cap]`, which spreads a thundering herd of
//! replicas best — backon adds jitter on top of the delay instead), a total time budget that
//! counts the operation's own duration, and sleeps that end the moment the caller is cancelled.
//!
//! Guarantees: at most `max_attempts` calls; the whole retry — attempts and sleeps — ends by
//! `max_elapsed` (an attempt still running then is dropped, and a sleep that would end after it
//! is not started); a permanent error (the predicate says so) is returned at once; cancellation
//! during an attempt or a sleep returns `Cancelled` immediately.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The cap on the first backoff; it doubles after every failed attempt.
    pub initial_delay: Duration,
    /// The largest cap any backoff can have.
    pub max_delay: Duration,
    pub max_attempts: u32,
    /// The whole budget, from the first call.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_attempts: 5,
            max_elapsed: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError<E> {
    /// The predicate said the error is not worth retrying.
    #[error("permanent failure: {0}")]
    Permanent(E),
    /// Attempts or time ran out; the last error.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: E },
    /// The time budget ran out while an attempt was still running.
    #[error("gave up after {attempts} attempts: out of time")]
    OutOfTime { attempts: u32 },
    #[error("cancelled while retrying")]
    Cancelled,
}

impl RetryPolicy {
    /// The random delay before attempt `attempt + 1` (attempts count from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// `min(max_delay, initial_delay × 2^(attempt−1))`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Calls `operation` until it succeeds, fails permanently, or the policy runs out.
pub async fn retry<T, E, Op, Fut>(
    policy: &RetryPolicy,
    cancel: &CancellationToken,
    is_transient: impl Fn(&E) -> bool,
    mut operation: Op,
) -> Result<T, RetryError<E>>
where
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let give_up_at = started + policy.max_elapsed;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(RetryError::Cancelled),
            () = tokio::time::sleep_until(give_up_at) => return Err(RetryError::OutOfTime { attempts: attempt }),
            result = operation(attempt) => match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            },
        };
        if !is_transient(&error) {
            return Err(RetryError::Permanent(error));
        }
        let delay = policy.backoff(attempt);
        let out_of_time = started.elapsed() + delay >= policy.max_elapsed;
        if attempt >= policy.max_attempts || out_of_time {
            return Err(RetryError::Exhausted { attempts: attempt, last: error });
        }
        tracing::debug!(attempt, ?delay, "transient failure; backing off");
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(RetryError::Cancelled),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn caps_double_up_to_the_maximum_and_delays_stay_under_them() {
        let p = policy();
        let caps: Vec<u64> = (1..=6).map(|a| p.backoff_cap(a).as_millis() as u64).collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        for attempt in 1..=6 {
            for _ in 0..100 {
                assert!(p.backoff(attempt) <= p.backoff_cap(attempt));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let calls = Cell::new(0);
        let result = retry(
            &policy(),
            &CancellationToken::new(),
            |_: &&str| true,
            |attempt| {
                calls.set(calls.get() + 1);
                async move { if attempt < 3 { Err("flaky") } else { Ok(attempt) } }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_run_out() {
        let result: Result<(), _> =
            retry(&policy(), &CancellationToken::new(), |_: &&str| true, |_| async { Err("down") }).await;
        assert_eq!(result, Err(RetryError::Exhausted { attempts: 5, last: "down" }));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(
            &policy(),
            &CancellationToken::new(),
            |e: &&str| *e != "bad input",
            |_| {
                calls.set(calls.get() + 1);
                async { Err("bad input") }
            },
        )
        .await;
        assert_eq!(result, Err(RetryError::Permanent("bad input")));
        assert_eq!(calls.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_budget_bounds_the_whole_retry() {
        let budget = RetryPolicy { max_elapsed: Duration::from_millis(500), max_attempts: 100, ..policy() };
        let started = Instant::now();
        let result: Result<(), _> = retry(
            &budget,
            &CancellationToken::new(),
            |_: &&str| true,
            |_| async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Err("slow")
            },
        )
        .await;
        assert!(matches!(result, Err(RetryError::Exhausted { .. } | RetryError::OutOfTime { .. })), "{result:?}");
        assert!(started.elapsed() <= Duration::from_millis(500), "took {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_interrupts_a_backoff_sleep() {
        let cancel = CancellationToken::new();
        let slow = RetryPolicy {
            initial_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            max_elapsed: Duration::from_secs(100_000),
            ..policy()
        };
        let canceller = cancel.clone();
        let started = Instant::now();
        let result: Result<(), _> = retry(
            &slow,
            &cancel,
            |_: &&str| true,
            |_| {
                let canceller = canceller.clone();
                async move {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        canceller.cancel();
                    });
                    Err("down")
                }
            },
        )
        .await;
        assert_eq!(result, Err(RetryError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
