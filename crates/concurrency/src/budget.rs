//! A memory budget: bytes that every holder of a large buffer reserves before it allocates,
//! so that the process's peak is the budget however many requests arrive at once.
//!
//! A weighted semaphore counted in KiB (tokio's `Semaphore`, whose permits are handed out in
//! the order they were asked for, so a large reservation is not starved by a stream of small
//! ones). A [`Reservation`] can grow as a body streams in, and gives everything back when it is
//! dropped, on every path. Waiting is bounded: a caller that cannot get its bytes within its
//! `max_wait` is told the budget is exhausted and can answer "busy" instead of queueing for
//! ever; a request for more than the whole budget is refused at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const KIB: u64 = 1024;

/// Bytes shared by every reservation made from it; cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_kib: u32,
}

/// Why bytes could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// More than the whole budget: it can never be granted.
    #[error("{asked} bytes asked of a budget of {total}")]
    TooLarge { asked: u64, total: u64 },
    /// The budget stayed taken by others for the whole wait.
    #[error("the memory budget stayed full")]
    Exhausted,
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    permit: Option<OwnedSemaphorePermit>,
}

fn kib_for(bytes: u64) -> u64 {
    bytes.div_ceil(KIB)
}

impl MemoryBudget {
    /// A budget of `bytes` (rounded down to whole KiB, at most 4 TiB).
    pub fn new(bytes: u64) -> Self {
        let total_kib = u32::try_from(bytes / KIB).unwrap_or(u32::MAX);
        Self { semaphore: Arc::new(Semaphore::new(total_kib as usize)), total_kib }
    }

    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_kib) * KIB
    }

    /// Bytes not reserved by anyone at this moment.
    pub fn available_bytes(&self) -> u64 {
        self.semaphore.available_permits() as u64 * KIB
    }

    /// A reservation of nothing yet, to [`grow`](Reservation::grow_to) as bytes arrive.
    pub fn empty(&self) -> Reservation {
        Reservation { budget: self.clone(), permit: None }
    }

    /// Reserves `bytes`, waiting at most `max_wait` for others to give theirs back.
    pub async fn reserve(&self, bytes: u64, max_wait: Duration) -> Result<Reservation, BudgetError> {
        let mut reservation = self.empty();
        reservation.grow_to(bytes, max_wait).await?;
        Ok(reservation)
    }
}

impl Reservation {
    /// The bytes held (whole KiB).
    pub fn bytes(&self) -> u64 {
        self.permit.as_ref().map_or(0, |permit| permit.num_permits() as u64 * KIB)
    }

    /// Holds at least `bytes` in all, reserving the difference; waits at most `max_wait`. On an
    /// error what was already held stays held (the caller decides whether to drop it).
    pub async fn grow_to(&mut self, bytes: u64, max_wait: Duration) -> Result<(), BudgetError> {
        let total = self.budget.total_bytes();
        if bytes > total {
            return Err(BudgetError::TooLarge { asked: bytes, total });
        }
        let more = kib_for(bytes).saturating_sub(self.bytes() / KIB);
        if more == 0 {
            return Ok(());
        }
        let more = u32::try_from(more).map_err(|_| BudgetError::TooLarge { asked: bytes, total })?;
        let semaphore = self.budget.semaphore.clone();
        let granted = match tokio::time::timeout(max_wait, semaphore.acquire_many_owned(more)).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a timeout is the budget staying full.
            Ok(Err(_)) | Err(_) => return Err(BudgetError::Exhausted),
        };
        match &mut self.permit {
            Some(held) => held.merge(granted),
            None => self.permit = Some(granted),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn reservations_grow_in_whole_kib_and_give_everything_back_when_dropped() {
        let budget = MemoryBudget::new(10 * MIB);
        let mut body = budget.empty();
        body.grow_to(1, Duration::ZERO).await.unwrap();
        assert_eq!(body.bytes(), 1024, "rounded up to a KiB");
        body.grow_to(3 * MIB + 1, Duration::ZERO).await.unwrap();
        assert_eq!(body.bytes(), 3 * MIB + 1024);
        body.grow_to(MIB, Duration::ZERO).await.unwrap();
        assert_eq!(body.bytes(), 3 * MIB + 1024, "never shrinks while held");
        assert_eq!(budget.available_bytes(), 7 * MIB - 1024);
        drop(body);
        assert_eq!(budget.available_bytes(), 10 * MIB);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_budget_makes_a_caller_wait_then_refuse_and_more_than_the_whole_is_refused_at_once() {
        let budget = MemoryBudget::new(10 * MIB);
        let held = budget.reserve(8 * MIB, Duration::ZERO).await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = budget.reserve(4 * MIB, Duration::from_secs(5)).await;
        assert_eq!(refused.unwrap_err(), BudgetError::Exhausted);
        assert_eq!(started.elapsed(), Duration::from_secs(5), "it waited its whole wait");
        assert_eq!(budget.available_bytes(), 2 * MIB, "a refusal holds nothing");
        let too_large = budget.reserve(11 * MIB, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(too_large, BudgetError::TooLarge { asked: 11 * MIB, total: 10 * MIB });
        assert_eq!(started.elapsed(), Duration::from_secs(5), "refused without waiting");

        // Given back while another waits: the waiter gets it.
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(4 * MIB, Duration::from_secs(60)).await.map(|r| r.bytes()) }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(4 * MIB));
    }
}
