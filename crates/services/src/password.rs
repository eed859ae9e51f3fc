//! Password hashing with argon2id, off the async workers and bounded.
//!
//! One hash costs ~20 ms of CPU and ~19 MiB of memory. Unbounded, a burst of logins with random
//! usernames fans out onto tokio's blocking pool (up to 512 threads) and takes the process to
//! gigabytes; so every hash goes through [`Hashing`]: at most `slots` run at once (the cores by
//! default), at most `max_waiting` wait for a slot, and none waits longer than `max_wait`.
//! Past either bound the caller gets [`ServiceError::Busy`] (503 with `Retry-After`) at once,
//! which costs nothing. A hash whose request went away while it waited is never started.
//!
//! The bounds are those of the services' one [`CpuPool`] type; this instance runs on exactly
//! `slots` threads of its own rather than on tokio's blocking pool, for the memory reason given
//! in [`crate::cpu`] (measured by `cargo xtask abuse`).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use stride_domain::Password;

use crate::cpu::{CpuPool, CpuPoolConfig, Threads};
use crate::{ServiceError, ServiceResult};

/// The bounds of password hashing.
#[derive(Debug, Clone, Copy)]
pub struct HashingConfig {
    /// Hashes at once (`STRIDE_HASH_CONCURRENCY`); the cores by default.
    pub slots: usize,
    /// Callers allowed to wait for a slot; past it, `Busy` at once.
    pub max_waiting: usize,
    /// The longest a caller waits for a slot (`STRIDE_HASH_WAIT_MS`).
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_slots(cores)
    }
}

impl HashingConfig {
    pub fn with_slots(slots: usize) -> Self {
        let slots = slots.max(1);
        Self { slots, max_waiting: 4 * slots, max_wait: Duration::from_secs(1) }
    }
}

/// The bounded hashing pool; clones share it. Its threads end when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Hashing {
    /// Threads of its own, not tokio's blocking pool: see [`crate::cpu`] for the memory reason.
    pool: CpuPool,
}

impl Hashing {
    pub(crate) fn new(config: HashingConfig) -> Self {
        let HashingConfig { slots, max_waiting, max_wait } = config;
        let config = CpuPoolConfig { slots, max_waiting, max_wait: Some(max_wait) };
        Self { pool: CpuPool::new(Threads::Dedicated("stride-hash"), config) }
    }

    pub(crate) async fn hash(&self, password: Password) -> ServiceResult<String> {
        self.pool
            .run(move || {
                Argon2::default()
                    .hash_password(password.expose().as_bytes())
                    .map(|hash| hash.to_string())
                    .map_err(|e| ServiceError::Internal(format!("hash password: {e}")))
            })
            .await?
    }

    /// `true` if `password` matches `stored_hash`. A malformed stored hash never matches.
    pub(crate) async fn verify(&self, password: String, stored_hash: String) -> ServiceResult<bool> {
        self.pool
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&stored_hash) else {
                    return false;
                };
                Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn strong() -> Password {
        Password::parse("correct horse battery").unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_gets_slots_plus_waiters_and_the_rest_is_refused_at_once() {
        let hashing = Hashing::new(HashingConfig { slots: 1, max_waiting: 2, max_wait: Duration::from_secs(30) });
        let burst = (0..10).map(|_| hashing.hash(strong()));
        let results = futures::future::join_all(burst).await;
        let hashed = results.iter().filter(|r| r.is_ok()).count();
        let busy = results.iter().filter(|r| matches!(r, Err(ServiceError::Busy { .. }))).count();
        assert_eq!((hashed, busy), (3, 7), "one running and two waiting; the rest answered busy");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_there_are_slots() {
        let hashing = Hashing::new(HashingConfig { slots: 2, max_waiting: 100, max_wait: Duration::from_secs(30) });
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..12).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            hashing.pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let hash = Argon2::default().hash_password(b"work").map(|h| h.to_string());
                running.fetch_sub(1, Ordering::SeqCst);
                hash.is_ok()
            })
        });
        assert!(futures::future::join_all(jobs).await.into_iter().all(|r| r.unwrap()));
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hashing = Hashing::new(HashingConfig::with_slots(1));
        let stored = hashing.hash(strong()).await.unwrap();
        assert!(hashing.verify("correct horse battery".into(), stored.clone()).await.unwrap());
        assert!(!hashing.verify("correct horse battery!".into(), stored).await.unwrap());
        assert!(!hashing.verify("anything".into(), "not a phc string".into()).await.unwrap());
    }
}
