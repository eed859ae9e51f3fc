//! The one bounded CPU pool of the services: every piece of CPU-heavy work (password hashing,
//! photo decoding and resizing, photo re-processing, and track parsing next) runs through a
//! [`CpuPool`], never straight on an async worker and never on an unbounded pool.
//!
//! Hand-written, because what it guarantees is the point:
//! - at most `slots` closures run at once; further callers wait in FIFO order (tokio's
//!   semaphore is fair), at most `max_waiting` of them and none longer than `max_wait`, past
//!   which they get [`ServiceError::Busy`] (503 with `Retry-After`) at once;
//! - a slot is held by the closure itself, not by the future awaiting it: a caller that gives
//!   up does not free the core its work still uses;
//! - work whose caller went away before it started is never started;
//! - a panic in the work is caught and becomes [`ServiceError::Internal`]; the pool survives;
//! - the caller's tracing span is carried into the work.
//!
//! Instances differ in where the work runs ([`Threads`]). Both product pools keep exactly
//! `slots` threads of their own, for a memory reason: tokio's blocking pool starts a new thread
//! whenever its threads are busy, and each thread's malloc arena keeps the large buffers it
//! once held, so bursts left hundreds of MiB resident. Password hashing (19 MiB an argon2 hash):
//! `cargo xtask abuse` measured +219 to +331 MiB over idle for 300 concurrent logins on the
//! blocking pool, +45 to +49 MiB on threads of its own. Photo processing (a decoded photo is up
//! to ~250 MB): `cargo xtask abuse-user` measured a peak of 974 MiB for 8 concurrent 7000 × 7000
//! PNGs on the blocking pool, past the 512 MiB decode budget the pixels are reserved from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{ServiceError, ServiceResult};

/// Where a pool's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// tokio's blocking pool, `slots` closures at a time.
    Blocking,
    /// Exactly `slots` threads of the pool's own, named `{name}-{n}`.
    Dedicated(&'static str),
}

/// The bounds of one pool.
#[derive(Debug, Clone, Copy)]
pub struct CpuPoolConfig {
    /// Closures running at once.
    pub slots: usize,
    /// Callers allowed to wait for a slot; past it, `Busy` at once.
    pub max_waiting: usize,
    /// The longest a caller waits for a slot; `None` waits as long as its own deadline allows.
    pub max_wait: Option<Duration>,
}

impl CpuPoolConfig {
    /// `slots` at once, and every other caller waits its turn.
    pub fn unbounded_wait(slots: usize) -> Self {
        Self { slots: slots.max(1), max_waiting: usize::MAX, max_wait: None }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A bounded CPU pool; clones share it. Dedicated threads end when the last clone is dropped.
#[derive(Clone)]
pub struct CpuPool {
    /// Feeds the dedicated threads; `None` on the blocking pool. Unbounded, because `slots`
    /// bounds what is ever in it: a job is sent only with a permit, one permit per thread.
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    /// One permit per closure running. It moves into the closure, so it is held exactly as
    /// long as the CPU work runs, even if the caller has gone.
    slots: Arc<Semaphore>,
    /// Callers waiting for a permit right now. An admission counter only: a relaxed view at
    /// worst admits one caller too few, never too many.
    waiting: Arc<AtomicUsize>,
    config: CpuPoolConfig,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool").field("config", &self.config).field("dedicated", &self.jobs.is_some()).finish()
    }
}

impl CpuPool {
    pub fn new(threads: Threads, config: CpuPoolConfig) -> Self {
        let slots = config.slots.max(1);
        let jobs = match threads {
            Threads::Blocking => None,
            Threads::Dedicated(name) => Some(start_threads(name, slots)),
        };
        Self { jobs, slots: Arc::new(Semaphore::new(slots)), waiting: Arc::default(), config }
    }

    /// One thread per core the process may use, every caller waiting its turn: the pool of
    /// photo processing and track parsing.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(Threads::Dedicated("stride-cpu"), CpuPoolConfig::unbounded_wait(cores))
    }

    /// How many closures run at once, at most.
    pub fn slots(&self) -> usize {
        self.config.slots.max(1)
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Runs `work` on the pool once a slot is free, and answers with its result.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
        let permit = {
            let _waiting = Waiting::enter(&self.waiting, self.config.max_waiting)?;
            let acquire = self.slots.clone().acquire_owned();
            let acquired = match self.config.max_wait {
                Some(max_wait) => tokio::time::timeout(max_wait, acquire).await.map_err(|_| busy())?,
                None => acquire.await,
            };
            acquired.map_err(|_| ServiceError::Internal("the CPU pool is closed".into()))?
        };
        // Set when this future is dropped (the caller went away): the closure then returns
        // before doing the work, if it had not started yet.
        let abandoned = Arc::new(AtomicBool::new(false));
        let _mark = MarkOnDrop(abandoned.clone());
        let span = tracing::Span::current();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if abandoned.load(Ordering::Acquire) {
                return drop(permit);
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| span.in_scope(work)))
                .map_err(|_| ServiceError::Internal("CPU work panicked".into()));
            // The slot is free before the caller hears back, so a caller that sees its result
            // also sees the slot available again.
            drop(permit);
            let _ = answer.send(result);
        });
        match &self.jobs {
            Some(jobs) => {
                jobs.send(job).map_err(|_| ServiceError::Internal("the CPU pool's threads are gone".into()))?
            }
            // Not awaited: the closure answers through `answer`, catches its own panic and
            // holds its permit until it ends, so nothing waits on or leaks from the handle.
            None => drop(tokio::task::spawn_blocking(job)),
        }
        answered.in_current_span().await.unwrap_or_else(|_| Err(ServiceError::Internal("CPU work abandoned".into())))
    }
}

fn start_threads(name: &str, slots: usize) -> std::sync::mpsc::Sender<Job> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    // A std mutex around the receiver: each thread holds it only to take the next job.
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for n in 0..slots {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new().name(format!("{name}-{n}")).spawn(move || {
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(_) => break,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a CPU pool thread");
        }
    }
    jobs
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

    async fn at_most_slots_run_at_once(threads: Threads) {
        let pool = CpuPool::new(threads, CpuPoolConfig::unbounded_wait(2));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, peak, barrier) = (pool.clone(), running.clone(), peak.clone(), barrier.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        // Two at a time meet here; a third would mean the bound leaked.
                        barrier.wait();
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_the_blocking_pool_no_more_than_its_slots_run_at_once() {
        at_most_slots_run_at_once(Threads::Blocking).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_its_own_threads_no_more_than_its_slots_run_at_once() {
        at_most_slots_run_at_once(Threads::Dedicated("test-cpu")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_internal_error_and_the_pool_goes_on() {
        for threads in [Threads::Blocking, Threads::Dedicated("test-panic")] {
            let pool = CpuPool::new(threads, CpuPoolConfig::unbounded_wait(1));
            let got = pool.run(|| -> u32 { panic!("boom") }).await;
            assert!(matches!(got, Err(ServiceError::Internal(_))), "{threads:?}: {got:?}");
            assert_eq!(pool.run(|| 7).await.unwrap(), 7, "{threads:?}");
            assert_eq!(pool.available(), 1, "{threads:?}: the slot came back");
        }
    }

    /// Runs work on `pool` that holds its slot until the returned sender is used; returns once
    /// the work is running.
    async fn occupy_a_slot(
        pool: &CpuPool,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<ServiceResult<()>>) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, is_running) = tokio::sync::oneshot::channel();
        let pool = pool.clone();
        let holder = tokio::spawn(async move {
            pool.run(move || {
                let _ = started.send(());
                let _ = hold.recv();
            })
            .await
        });
        is_running.await.unwrap();
        (release, holder)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_waiting_callers_are_busy_at_once() {
        let pool = CpuPool::new(
            Threads::Blocking,
            CpuPoolConfig { slots: 1, max_waiting: 1, max_wait: Some(Duration::from_secs(30)) },
        );
        let (release, holder) = occupy_a_slot(&pool).await;
        // One caller may wait; while it does, the next is refused without waiting.
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 1).await }
        });
        let refused = loop {
            // Until the waiter has registered, a caller here would be admitted in its place.
            if pool.waiting.load(Ordering::SeqCst) == 1 {
                break pool.run(|| 2).await;
            }
            tokio::task::yield_now().await;
        };
        assert!(matches!(refused, Err(ServiceError::Busy { .. })), "{refused:?}");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_waits_past_max_wait_is_busy() {
        let pool = CpuPool::new(
            Threads::Blocking,
            CpuPoolConfig { slots: 1, max_waiting: 4, max_wait: Some(Duration::from_secs(1)) },
        );
        let held = pool.slots.clone().acquire_owned().await.unwrap();
        let got = pool.run(|| 1).await;
        assert!(matches!(got, Err(ServiceError::Busy { .. })), "{got:?}");
        drop(held);
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_whose_caller_left_before_it_started_never_runs() {
        let pool = CpuPool::new(Threads::Dedicated("test-abandon"), CpuPoolConfig::unbounded_wait(1));
        let ran = Arc::new(AtomicBool::new(false));
        let (release, blocker) = occupy_a_slot(&pool).await;
        let abandoned = tokio::spawn({
            let (pool, ran) = (pool.clone(), ran.clone());
            async move { pool.run(move || ran.store(true, Ordering::SeqCst)).await }
        });
        // Wait until the second caller is queued for the slot, then let it go.
        while pool.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // The pool's one thread runs jobs in order: once this answers, the abandoned one had
        // its turn before it.
        pool.run(|| ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "work of a caller that left was started");
    }
}
