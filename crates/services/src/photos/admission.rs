//! What an upload is granted before its body is read, and what decoding a file is granted
//! before its pixels are allocated: memory is budgeted, not hoped for.
//!
//! - Each user has at most `uploads_per_user` photo uploads in flight in this process (429
//!   past it): one account cannot occupy the whole upload budget.
//! - The bytes of every upload body held in memory come out of one process-wide
//!   [`MemoryBudget`] (`STRIDE_UPLOAD_MEMORY_BYTES`), reserved chunk by chunk as the body
//!   streams in and held until the upload is answered. A body that cannot get its next bytes
//!   within `memory_wait` is answered 503 with `Retry-After`; the client's stalled or slow
//!   sending meanwhile is held back by TCP, not by our memory.
//! - Decoding a file reserves its [`decode_cost`](super::process::decode_cost) (its pixels at
//!   their peak, known from the header) from a second budget (`STRIDE_DECODE_MEMORY_BYTES`)
//!   for as long as its CPU work runs; a file that alone needs more than the whole budget is
//!   413.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stride_concurrency::{BudgetError, MemoryBudget, Reservation};
use stride_domain::UserId;

use crate::{ServiceError, ServiceResult};

/// The budgets every upload of this process shares.
#[derive(Clone)]
pub(crate) struct Budgets {
    uploads: Arc<stride_concurrency::sync::Mutex<HashMap<UserId, u32>>>,
    uploads_per_user: u32,
    upload_memory: MemoryBudget,
    decode_memory: MemoryBudget,
    memory_wait: Duration,
}

/// An upload let in: its user's slot and the body bytes it holds, both given back on drop.
pub struct UploadAdmission {
    _slot: UploadSlot,
    body: Reservation,
    memory_wait: Duration,
}

struct UploadSlot {
    uploads: Arc<stride_concurrency::sync::Mutex<HashMap<UserId, u32>>>,
    user: UserId,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut uploads = self.uploads.lock();
        if let Some(count) = uploads.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                uploads.remove(&self.user);
            }
        }
    }
}

fn busy(what: &str) -> ServiceError {
    tracing::warn!("{what}: the memory budget stayed full");
    ServiceError::Busy { retry_after: Duration::from_secs(5) }
}

impl Budgets {
    pub(crate) fn new(uploads_per_user: u32, upload_bytes: u64, decode_bytes: u64, memory_wait: Duration) -> Self {
        Self {
            uploads: Arc::default(),
            uploads_per_user: uploads_per_user.max(1),
            upload_memory: MemoryBudget::new(upload_bytes),
            decode_memory: MemoryBudget::new(decode_bytes),
            memory_wait,
        }
    }

    /// One of `user`'s upload slots, or 429.
    pub(crate) fn admit(&self, user: UserId) -> ServiceResult<UploadAdmission> {
        let mut uploads = self.uploads.lock();
        let count = uploads.entry(user).or_insert(0);
        if *count >= self.uploads_per_user {
            return Err(ServiceError::RateLimited {
                retry_after: Duration::from_secs(1),
                message: format!("at most {} photo uploads at once", self.uploads_per_user),
            });
        }
        *count += 1;
        let slot = UploadSlot { uploads: self.uploads.clone(), user };
        Ok(UploadAdmission { _slot: slot, body: self.upload_memory.empty(), memory_wait: self.memory_wait })
    }

    /// The decode budget's bytes for one file's pixels, held until dropped.
    pub(crate) async fn decode(&self, name: &str, cost: u64) -> ServiceResult<Reservation> {
        match self.decode_memory.reserve(cost, self.memory_wait).await {
            Ok(reservation) => Ok(reservation),
            Err(BudgetError::TooLarge { asked, total }) => Err(ServiceError::TooLarge(format!(
                "{name}: decoding it needs {} MiB, more than the server allows at once ({} MiB)",
                asked >> 20,
                total >> 20
            ))),
            Err(BudgetError::Exhausted) => Err(busy("decoding")),
        }
    }
}

impl UploadAdmission {
    /// Holds `bytes` of body in all (call as they arrive); 503 when the budget stays full.
    pub async fn hold(&mut self, bytes: u64) -> ServiceResult<()> {
        match self.body.grow_to(bytes, self.memory_wait).await {
            Ok(()) => Ok(()),
            Err(BudgetError::TooLarge { .. }) => Err(ServiceError::TooLarge(format!(
                "the upload is larger than the server's upload memory ({} bytes)",
                bytes
            ))),
            Err(BudgetError::Exhausted) => Err(busy("an upload body")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_has_two_uploads_at_once_and_a_finished_one_frees_its_slot() {
        let budgets = Budgets::new(2, 1 << 20, 1 << 20, Duration::ZERO);
        let (ann, bob) = (UserId::new(), UserId::new());
        let first = budgets.admit(ann).unwrap();
        let _second = budgets.admit(ann).unwrap();
        assert!(matches!(budgets.admit(ann), Err(ServiceError::RateLimited { .. })));
        assert!(budgets.admit(bob).is_ok(), "per user");
        drop(first);
        assert!(budgets.admit(ann).is_ok());
    }

    #[tokio::test]
    async fn upload_bodies_share_one_budget_and_give_it_back_when_answered() {
        let budgets = Budgets::new(5, 1 << 20, 1 << 20, Duration::ZERO);
        let mut first = budgets.admit(UserId::new()).unwrap();
        first.hold(800 << 10).await.unwrap();
        let mut second = budgets.admit(UserId::new()).unwrap();
        assert!(matches!(second.hold(300 << 10).await, Err(ServiceError::Busy { .. })), "the budget is shared");
        drop(first);
        second.hold(300 << 10).await.unwrap();
        assert!(matches!(second.hold(2 << 20).await, Err(ServiceError::TooLarge(_))));
    }

    #[tokio::test]
    async fn a_file_that_alone_needs_more_than_the_decode_budget_is_too_large_and_names_itself() {
        let budgets = Budgets::new(2, 1 << 20, 64 << 20, Duration::ZERO);
        let held = budgets.decode("a.png", 40 << 20).await.unwrap();
        assert!(matches!(budgets.decode("b.png", 40 << 20).await, Err(ServiceError::Busy { .. })));
        let Err(ServiceError::TooLarge(message)) = budgets.decode("huge.png", 65 << 20).await else { panic!() };
        assert!(message.starts_with("huge.png: decoding it needs 65 MiB"), "{message}");
        drop(held);
        assert!(budgets.decode("b.png", 40 << 20).await.is_ok());
    }
}
