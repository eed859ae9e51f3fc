//! Live counts of a worker pool's jobs, readable from any thread without a lock.
//!
//! Each job moves queued → running → done | failed (or queued → cancelled). Every transition
//! is a single atomic read-modify-write per counter, so concurrent workers never lose an
//! update; a snapshot may be momentarily between two counters of one transition, which is fine
//! for monitoring. Loom model: `loom_models::counters_never_lose_an_update`.

use crate::sync::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    queued: AtomicUsize,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    cancelled: AtomicUsize,
}

/// A point-in-time copy of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub queued: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl CounterSnapshot {
    /// Jobs that reached a final state.
    pub fn finished(&self) -> usize {
        self.done + self.failed + self.cancelled
    }
}

fn increment(counter: &AtomicUsize) {
    #[cfg(not(stride_mutant = "counters_lost_update"))]
    counter.fetch_add(1, Ordering::AcqRel);
    // Seeded bug for the loom gate: a read-then-write loses concurrent increments.
    #[cfg(stride_mutant = "counters_lost_update")]
    {
        let seen = counter.load(Ordering::Acquire);
        counter.store(seen + 1, Ordering::Release);
    }
}

fn decrement(counter: &AtomicUsize) {
    counter.fetch_sub(1, Ordering::AcqRel);
}

impl Counters {
    pub(crate) fn queued(&self) {
        increment(&self.queued);
    }

    pub(crate) fn started(&self) {
        decrement(&self.queued);
        increment(&self.running);
    }

    pub(crate) fn finished(&self, succeeded: bool) {
        decrement(&self.running);
        increment(if succeeded { &self.done } else { &self.failed });
    }

    pub(crate) fn cancelled_while_running(&self) {
        decrement(&self.running);
        increment(&self.cancelled);
    }

    pub(crate) fn cancelled_while_queued(&self) {
        decrement(&self.queued);
        increment(&self.cancelled);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            queued: self.queued.load(Ordering::Acquire),
            running: self.running.load(Ordering::Acquire),
            done: self.done.load(Ordering::Acquire),
            failed: self.failed.load(Ordering::Acquire),
            cancelled: self.cancelled.load(Ordering::Acquire),
        }
    }
}
