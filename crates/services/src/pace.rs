//! A pace for calls to an outside API: a token bucket a caller waits on for its turn.

use std::time::Duration;

use stride_domain::{Admission, RateLimit};

/// A process's budget of calls to an outside API (the weather API's): a token bucket ([`RateLimit`]) that a
/// lookup waits on for its turn. In-process by design: the budget protects the API (and the
/// operator's quota with it) from this process's bursts; N replicas share N budgets.
pub(crate) struct Pace {
    limit: RateLimit,
    started: tokio::time::Instant,
    /// The bucket's theoretical arrival time, in µs since `started`.
    tat_us: tokio::sync::Mutex<Option<i64>>,
}

impl Pace {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, started: tokio::time::Instant::now(), tat_us: tokio::sync::Mutex::new(None) }
    }

    /// Waits until a call may be made, and takes that turn. Turns are handed out in order: the
    /// lock is held while waiting, so a later caller cannot overtake.
    pub(crate) async fn turn(&self) {
        let mut tat = self.tat_us.lock().await;
        loop {
            let now_us = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
            match self.limit.decide(*tat, now_us) {
                (Admission::Admitted, next) => {
                    *tat = Some(next);
                    return;
                }
                (Admission::Refused { .. }, _) => {
                    let wait_us = self.limit.wait_us(tat.unwrap_or(now_us), now_us);
                    tokio::time::sleep(Duration::from_micros(wait_us.unsigned_abs())).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_api_budget_lets_a_burst_through_then_hands_out_turns_in_order_at_its_rate() {
        let pace = Arc::new(Pace::new(RateLimit::per_minute(2)));
        let start = tokio::time::Instant::now();
        let mut turns = tokio::task::JoinSet::new();
        for caller in 0..4 {
            let pace = pace.clone();
            turns.spawn(async move {
                pace.turn().await;
                (caller, start.elapsed())
            });
        }
        let mut times: Vec<Duration> = turns.join_all().await.into_iter().map(|(_, at)| at).collect();
        times.sort();
        // Two at once (the burst), then one every 30 s.
        let seconds = [0, 0, 30, 60].map(Duration::from_secs);
        assert_eq!(times, seconds);
    }
}
