//! Password hashing with argon2id, off the async workers and bounded.
//!
//! One hash costs ~20 ms of CPU and ~19 MiB of memory. Unbounded, a burst of logins with random
//! usernames fans out onto tokio's blocking pool (up to 512 threads) and takes the process to
//! gigabytes; so every hash goes through [`Hashing`]: at most `slots` run at once (the cores by
//! default), at most `max_waiting` wait for a slot, and none waits longer than `max_wait`.
//! Past either bound the caller gets [`ServiceError::Busy`] (503 with `Retry-After`) at once,
//! which costs nothing. A hash whose request went away while it waited is never started.
//!
//! Hashes run on exactly `slots` threads of their own, not on tokio's blocking pool: that pool
//! starts a new thread whenever its threads are busy, and each thread's malloc arena keeps the
//! 19 MiB it once held, so a burst left hundreds of MiB resident (measured by
//! `cargo xtask abuse`: +219 to +331 MiB over idle for 300 concurrent logins; +157 to +179 MiB
//! with threads of its own; +45 to +49 MiB once the `stride` binary pins glibc's mmap threshold,
//! so that freed hash buffers leave the process).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use stride_domain::Password;
use tokio::sync::Semaphore;
use tracing::Instrument;

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

type Job = Box<dyn FnOnce() + Send>;

/// The bounded hashing pool; clones share it. Its threads end when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Hashing {
    /// Feeds the hashing threads. Unbounded, because `slots` bounds what is ever in it: a job
    /// is sent only with a permit, and there are as many permits as threads.
    jobs: std::sync::mpsc::Sender<Job>,
    /// One permit per hash running. An async semaphore: a caller waits for its permit, and the
    /// permit then moves into the blocking closure, so it is held exactly as long as the CPU
    /// work runs, even if the caller has gone.
    slots: Arc<Semaphore>,
    /// Callers waiting for a permit right now. An atomic admission counter: it only gates
    /// entry, so a relaxed view is never unsafe, at worst one caller too few is admitted.
    waiting: Arc<AtomicUsize>,
    config: HashingConfig,
}

impl Hashing {
    pub(crate) fn new(config: HashingConfig) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        // A std mutex around the receiver: each thread holds it only to take the next job.
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..config.slots.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("stride-hash-{n}")).spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs, slots: Arc::new(Semaphore::new(config.slots.max(1))), waiting: Arc::default(), config }
    }

    pub(crate) async fn hash(&self, password: Password) -> ServiceResult<String> {
        self.run(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| ServiceError::Internal(format!("hash password: {e}")))
        })
        .await
    }

    /// `true` if `password` matches `stored_hash`. A malformed stored hash never matches.
    pub(crate) async fn verify(&self, password: String, stored_hash: String) -> ServiceResult<bool> {
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&stored_hash) else {
                return Ok(false);
            };
            Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ServiceResult<T> + Send + 'static,
    ) -> ServiceResult<T> {
        let permit = {
            let _waiting = Waiting::enter(&self.waiting, self.config.max_waiting)?;
            match tokio::time::timeout(self.config.max_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(ServiceError::Internal("the hashing pool is closed".into())),
                Err(_) => return Err(busy()),
            }
        };
        // Set when this future is dropped (the request went away): the blocking closure then
        // returns before doing the work, if it had not started yet.
        let abandoned = Arc::new(AtomicBool::new(false));
        let _mark = MarkOnDrop(abandoned.clone());
        let span = tracing::Span::current();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            if abandoned.load(Ordering::Acquire) {
                return;
            }
            // A panicking hash must not take its thread down with it.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| span.in_scope(work)))
                .unwrap_or_else(|_| Err(ServiceError::Internal("password hashing panicked".into())));
            let _ = answer.send(result);
        });
        if self.jobs.send(job).is_err() {
            return Err(ServiceError::Internal("the hashing threads are gone".into()));
        }
        answered.in_current_span().await.unwrap_or_else(|_| Err(ServiceError::Internal("hash abandoned".into())))
    }
}

fn busy() -> ServiceError {
    ServiceError::Busy { retry_after: Duration::from_secs(1) }
}

/// One caller counted as waiting for a slot until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(waiting: &'a AtomicUsize, max: usize) -> ServiceResult<Self> {
        if waiting.fetch_add(1, Ordering::AcqRel) >= max {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        Ok(Self(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct MarkOnDrop(Arc<AtomicBool>);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
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
            hashing.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let hash = Argon2::default().hash_password(b"work").map(|h| h.to_string());
                running.fetch_sub(1, Ordering::SeqCst);
                hash.map_err(|e| ServiceError::Internal(e.to_string()))
            })
        });
        assert!(futures::future::join_all(jobs).await.iter().all(Result::is_ok));
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_waits_too_long_is_told_to_come_back() {
        let hashing = Hashing::new(HashingConfig { slots: 1, max_waiting: 4, max_wait: Duration::from_millis(1) });
        let held = hashing.slots.clone().acquire_owned().await.unwrap();
        let got = hashing.hash(strong()).await;
        assert!(matches!(got, Err(ServiceError::Busy { .. })), "{got:?}");
        drop(held);
        assert!(hashing.hash(strong()).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_whose_caller_left_while_waiting_is_never_started() {
        let hashing = Hashing::new(HashingConfig { slots: 1, max_waiting: 4, max_wait: Duration::from_secs(30) });
        let started = Arc::new(AtomicUsize::new(0));
        let held = hashing.slots.clone().acquire_owned().await.unwrap();
        let counted = started.clone();
        let waiting = hashing.run(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        // Poll it into the queue, then give up on it, as a dropped request does.
        assert!(tokio::time::timeout(Duration::from_millis(20), waiting).await.is_err());
        drop(held);
        // The slot is free again and the abandoned work never ran.
        hashing.run(|| Ok(())).await.unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 0);
        assert_eq!(hashing.waiting.load(Ordering::SeqCst), 0);
    }
}
