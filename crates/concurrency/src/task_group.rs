//! Go's `errgroup` for tokio: spawn related tasks, let the first failure cancel the others,
//! and wait for all of them.
//!
//! Guarantees:
//! - The first task to fail (return `Err` or panic) cancels the group's token; every sibling
//!   is stopped at its next pending `.await` (each task runs under `select!` with the token).
//!   A task that watches the token itself is polled once more first, so it can react — but
//!   cleanup that must await belongs outside the group.
//! - `wait` returns only after every task has ended, with the first failure — never a later
//!   one, however close together they happen (see `FirstError`).
//! - Dropping the group aborts every task still running.
//! - With [`TaskGroup::with_limit`], at most `limit` tasks run at once; the rest wait for a slot.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::first_error::FirstError;
use crate::outcome::panic_message;
use std::sync::Arc;

/// Why a group failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError<E> {
    #[error("a task failed: {0}")]
    Failed(E),
    #[error("a task panicked: {0}")]
    Panicked(String),
}

pub struct TaskGroup<E> {
    /// Owns every spawned task: dropping the group aborts them, `wait` joins them all.
    tasks: JoinSet<()>,
    /// Signalled by the first task that fails (and by `cancel`); every task watches it.
    cancel: CancellationToken,
    /// Written once, by whichever failing task gets there first (a compare-and-set inside);
    /// read by `wait` after every task has ended, so no task can overwrite what it reports.
    first_error: Arc<FirstError<GroupError<E>>>,
    /// The concurrency limit, if any. An async semaphore: a task holds its permit across the
    /// `.await`s of its whole body.
    slots: Option<Arc<Semaphore>>,
}

impl<E: Send + 'static> Default for TaskGroup<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Send + 'static> TaskGroup<E> {
    pub fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            first_error: Arc::new(FirstError::new()),
            slots: None,
        }
    }

    /// A group running at most `limit` tasks at a time.
    pub fn with_limit(limit: usize) -> Self {
        Self { slots: Some(Arc::new(Semaphore::new(limit.max(1)))), ..Self::new() }
    }

    /// The group's cancellation token, cancelled by the first failure; hand it to work that
    /// should stop early or clean up.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Starts a task. It is given the group's token; it is also stopped at its next `.await`
    /// once the token is cancelled.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (cancel, first_error, slots) = (self.cancel.clone(), self.first_error.clone(), self.slots.clone());
        self.tasks.spawn(async move {
            let _slot = match slots {
                Some(slots) => tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    slot = slots.acquire_owned() => Some(slot.expect("the semaphore is never closed")),
                },
                None => None,
            };
            let run = AssertUnwindSafe(task(cancel.clone())).catch_unwind();
            // The task is polled first, so one that watches the token gets to react (up to its
            // next pending `.await`) before it is dropped.
            let failure = tokio::select! {
                biased;
                result = run => match result {
                    Ok(Ok(())) => return,
                    Ok(Err(error)) => GroupError::Failed(error),
                    Err(panic) => GroupError::Panicked(panic_message(panic)),
                },
                () = cancel.cancelled() => return,
            };
            if first_error.record(failure) {
                cancel.cancel();
            }
        });
    }

    /// Waits for every task; the first failure, if any.
    pub async fn wait(mut self) -> Result<(), GroupError<E>> {
        while self.tasks.join_next().await.is_some() {}
        match self.first_error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_error_cancels_the_siblings_and_is_returned_after_all_end() {
        let mut group = TaskGroup::new();
        let cleaned_up = std::sync::Arc::new(AtomicBool::new(false));
        let finished = std::sync::Arc::new(AtomicUsize::new(0));
        for i in 0..5u64 {
            let finished = finished.clone();
            group.spawn(move |_| async move {
                tokio::time::sleep(Duration::from_secs(i + 1)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                if i == 1 { Err(format!("task {i} failed")) } else { Ok(()) }
            });
        }
        let cleaned = cleaned_up.clone();
        group.spawn(move |token| async move {
            token.cancelled().await;
            cleaned.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert_eq!(group.wait().await, Err(GroupError::Failed("task 1 failed".to_owned())));
        assert_eq!(finished.load(Ordering::SeqCst), 2, "tasks 0 and 1 ran; the later ones were cancelled");
        assert!(cleaned_up.load(Ordering::SeqCst), "a task watching the token saw the cancellation");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_a_failure() {
        let mut group: TaskGroup<String> = TaskGroup::new();
        group.spawn(|_| async { panic!("boom") });
        assert_eq!(group.wait().await, Err(GroupError::Panicked("boom".to_owned())));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_without_failures_succeeds() {
        let mut group: TaskGroup<String> = TaskGroup::with_limit(2);
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let count = count.clone();
            group.spawn(move |_| async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        assert_eq!(group.wait().await, Ok(()));
        assert_eq!(count.load(Ordering::SeqCst), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_group_aborts_its_tasks() {
        let ran_to_end = std::sync::Arc::new(AtomicBool::new(false));
        let mut group: TaskGroup<String> = TaskGroup::new();
        let flag = ran_to_end.clone();
        group.spawn(move |_| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        tokio::task::yield_now().await;
        drop(group);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(!ran_to_end.load(Ordering::SeqCst));
    }

    /// Many groups on a multi-thread runtime (the ThreadSanitizer run uses this): whatever the
    /// sizes and however failures interleave, `wait` returns one of the failures that happened,
    /// or `Ok` when none did, and only after every task has ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stress_one_of_the_real_failures_is_returned_after_every_task_ended() {
        for iteration in 0..crate::testing::stress_iterations() {
            let tasks = (iteration * 7 % 23 + 1) as usize;
            let limit = (iteration % 5 + 1) as usize;
            let failing: Vec<bool> = (0..tasks)
                .map(|i| !iteration.is_multiple_of(3) && (i * 13 + iteration as usize).is_multiple_of(9))
                .collect();
            let (started, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            // parking_lot, not std's Mutex: std is not instrumented in the TSan build, so a
            // std lock's ordering is invisible to it and the guarded pushes look racy.
            let failed = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let mut group = TaskGroup::with_limit(limit);
            for (i, fails) in failing.iter().copied().enumerate() {
                let (started, ended, failed) = (started.clone(), ended.clone(), failed.clone());
                group.spawn(move |_| async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    /// Counts the task as ended however it ends: by returning or by being
                    /// dropped at an `.await` once the group is cancelled.
                    struct Ended(Arc<AtomicUsize>);
                    impl Drop for Ended {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let _ended = Ended(ended);
                    tokio::task::yield_now().await;
                    if fails {
                        failed.lock().push(i);
                        return Err(i);
                    }
                    tokio::task::yield_now().await;
                    Ok(())
                });
            }
            let outcome = group.wait().await;
            let failed = failed.lock().clone();
            let (started, ended) = (started.load(Ordering::SeqCst), ended.load(Ordering::SeqCst));
            match outcome {
                Ok(()) => assert!(failed.is_empty(), "iteration {iteration}: failures {failed:?} went unreported"),
                Err(GroupError::Failed(first)) => {
                    assert!(failed.contains(&first), "iteration {iteration}: {first} never failed")
                }
                Err(other) => panic!("iteration {iteration}: {other:?}"),
            }
            // Tasks still waiting for a slot when the group was cancelled never start; every
            // task that started has ended by the time `wait` returns.
            assert_eq!(started, ended, "iteration {iteration}: a task outlived `wait`");
            if failing.iter().all(|fails| !fails) {
                assert_eq!(started, tasks, "iteration {iteration}: without failures every task runs");
            }
        }
    }
}
