//! A point in time by which a piece of work must be done — the Rust counterpart of Go's
//! `context.WithDeadline`, minus the cancellation half, which in async Rust is simply dropping
//! the future.
//!
//! One `Deadline` is minted per request at the HTTP edge and passed *by value* down through
//! services into every repository call, where it both bounds the client-side wait and (on
//! PostgreSQL) becomes the statement timeout, so abandoned work also stops on the server.
//! It is built on `tokio::time::Instant` so tests can pause and advance time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

/// The work did not finish before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self { at: Instant::now() + budget }
    }

    pub fn at(at: Instant) -> Self {
        Self { at }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The earlier of this deadline and `budget` from now: a per-call limit never extends the
    /// caller's deadline, it can only tighten it.
    pub fn tightened_by(self, budget: Duration) -> Self {
        self.min(Self::after(budget))
    }

    /// Runs `work` until it completes or the deadline passes; on expiry the future is dropped,
    /// which is how cancellation reaches whatever it was awaiting. Work whose deadline has
    /// already passed is not started: tokio's timer fires a past deadline only at its next
    /// turn, and a fast enough call (a local S3 server) could otherwise answer first.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, DeadlineExceeded> {
        if self.is_expired() {
            return Err(DeadlineExceeded);
        }
        tokio::time::timeout_at(self.at, work).await.map_err(|_| DeadlineExceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_its_deadline_is_never_started() {
        let started = std::sync::atomic::AtomicBool::new(false);
        let past = Deadline::after(Duration::ZERO);
        let outcome = past.run(async { started.store(true, std::sync::atomic::Ordering::SeqCst) }).await;
        assert_eq!(outcome, Err(DeadlineExceeded));
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst), "ready work past its deadline still ran");
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_outlives_its_deadline_is_cancelled() {
        let deadline = Deadline::after(Duration::from_millis(100));
        let outcome = deadline.run(tokio::time::sleep(Duration::from_secs(1))).await;
        assert_eq!(outcome, Err(DeadlineExceeded));
        assert!(deadline.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn work_within_its_deadline_completes() {
        let deadline = Deadline::after(Duration::from_secs(1));
        assert_eq!(deadline.run(async { 7 }).await, Ok(7));
        assert_eq!(deadline.remaining(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn tightening_never_extends_a_deadline() {
        let deadline = Deadline::after(Duration::from_millis(100));
        assert_eq!(deadline.tightened_by(Duration::from_secs(5)), deadline);
        assert_eq!(deadline.tightened_by(Duration::from_millis(10)).remaining(), Duration::from_millis(10));
    }
}
