//! A fixed set of workers serving a bounded job queue. Hand-written on purpose: it is one of
//! the primitives Stride's mission asks us to build and teach.
//!
//! Guarantees:
//! - **Backpressure**: `submit` waits while the queue is full; memory is bounded by
//!   `queue + workers` jobs plus `queue + workers` unread results.
//! - **Every accepted job yields exactly one result** — `Ok`, `Err`, `Panicked` or `Cancelled` —
//!   through `next_result`, or in the vector `shutdown` returns.
//! - **A panicking job** becomes `Outcome::Panicked`; its worker keeps serving.
//! - **`close`** stops intake; workers finish the queue, then `next_result` returns `None`.
//! - **`shutdown(deadline)`** closes, lets work finish until the deadline, then cancels running
//!   jobs (at their next `.await`) and queued ones; when it returns no worker task is left.
//! - **Drop** aborts every worker at its next `.await` (blocking work already started may
//!   finish; its result is discarded).
//!
//! Deadlock hazard, designed out: a caller that `submit`s and reads results *from the same
//! task* with `await` in sequence can block forever once both bounded queues are full (workers
//! wait to hand over results nobody reads; `submit` waits for queue space nobody frees). That
//! is why `submit` and `next_result` both take `&self`: one task can wait on both at once with
//! `select!` (as [`WorkerPool::process`] does), or share the pool with a consumer task through
//! an `Arc`. Tested by `a_single_task_can_submit_and_consume_more_jobs_than_the_queues_hold`
//! and the stress loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::outcome::panic_message;
use std::sync::Arc;

use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::{CounterSnapshot, Counters, Deadline, Outcome};

/// The number a job was given when it was accepted, in submission order from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// `submit` after `close`, or after `shutdown` began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worker pool is closed")]
pub struct PoolClosed;

type Finished<Out, E> = (JobId, Outcome<Out, E>);

pub struct WorkerPool<In, Out, E> {
    /// `None` once closed. A sync lock: held only to clone or drop the sender.
    jobs: Mutex<Option<mpsc::Sender<(JobId, In)>>>,
    /// Kept so `shutdown` can drain jobs the workers never started.
    queue: Arc<AsyncMutex<mpsc::Receiver<(JobId, In)>>>,
    /// An async lock because a reader holds it across `recv().await`.
    results: AsyncMutex<mpsc::Receiver<Finished<Out, E>>>,
    workers: JoinSet<()>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    next_id: AtomicU64,
}

impl<In, Out, E> WorkerPool<In, Out, E>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Send + 'static,
{
    /// Starts `workers` workers (at least one) over a queue of `queue` jobs (at least one),
    /// each running `handler` on one job at a time.
    pub fn new<F, Fut>(workers: usize, queue: usize, handler: F) -> Self
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, E>> + Send + 'static,
    {
        let workers_count = workers.max(1);
        let queue_capacity = queue.max(1);
        let (job_tx, job_rx) = mpsc::channel(queue_capacity);
        let (result_tx, result_rx) = mpsc::channel(queue_capacity + workers_count);
        let queue = Arc::new(AsyncMutex::new(job_rx));
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let handler = Arc::new(handler);
        let mut tasks = JoinSet::new();
        for _ in 0..workers_count {
            tasks.spawn(worker(queue.clone(), result_tx.clone(), handler.clone(), counters.clone(), cancel.clone()));
        }
        Self {
            jobs: Mutex::new(Some(job_tx)),
            queue,
            results: AsyncMutex::new(result_rx),
            workers: tasks,
            counters,
            cancel,
            next_id: AtomicU64::new(0),
        }
    }

    /// Queues a job, waiting while the queue is full. Cancel-safe: if this future is dropped
    /// before it returns, the job was not accepted.
    pub async fn submit(&self, input: In) -> Result<JobId, PoolClosed> {
        let jobs = self.jobs.lock().clone().ok_or(PoolClosed)?;
        let permit = jobs.reserve().await.map_err(|_| PoolClosed)?;
        Ok(self.accept(permit, input))
    }

    fn accept(&self, permit: mpsc::Permit<'_, (JobId, In)>, input: In) -> JobId {
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        // Counted before it becomes visible to a worker, so `started` never precedes `queued`.
        self.counters.queued();
        permit.send((id, input));
        id
    }

    /// The next finished job, in order of completion; `None` once the pool is closed and
    /// every accepted job has been reported.
    pub async fn next_result(&self) -> Option<Finished<Out, E>> {
        self.results.lock().await.recv().await
    }

    /// Stops accepting jobs; queued jobs still run.
    pub fn close(&self) {
        self.jobs.lock().take();
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// Runs every input through the pool from this one task and returns all outcomes, in
    /// order of completion. Safe however small the queues: it waits for queue space and for
    /// results at the same time, so neither side can starve the other.
    pub async fn process(mut self, inputs: impl IntoIterator<Item = In>) -> Vec<Finished<Out, E>> {
        let mut inputs = inputs.into_iter().peekable();
        let mut finished = Vec::new();
        while inputs.peek().is_some() {
            let Some(jobs) = self.jobs.lock().clone() else {
                break;
            };
            tokio::select! {
                permit = jobs.reserve() => match permit {
                    Ok(permit) => {
                        let input = inputs.next().expect("peeked");
                        self.accept(permit, input);
                    }
                    Err(_) => break,
                },
                Some(result) = self.next_result() => finished.push(result),
            }
        }
        self.close();
        while let Some(result) = self.next_result().await {
            finished.push(result);
        }
        self.join_workers().await;
        finished
    }

    /// Stops intake, lets jobs finish until `deadline`, then cancels the rest. Returns every
    /// result not read yet (cancelled jobs included). No worker task outlives this call.
    pub async fn shutdown(mut self, deadline: Deadline) -> Vec<Finished<Out, E>> {
        self.close();
        let mut unread = Vec::new();
        let mut results = self.results.lock().await;
        let drained_in_time = deadline
            .run(async {
                while let Some(result) = results.recv().await {
                    unread.push(result);
                }
            })
            .await
            .is_ok();
        if !drained_in_time {
            self.cancel.cancel();
            // Workers stop at their next await and report their running jobs as cancelled.
            while let Some(result) = results.recv().await {
                unread.push(result);
            }
            // Jobs nobody started are cancelled here, each reported once.
            let mut queue = self.queue.lock().await;
            while let Ok((id, _)) = queue.try_recv() {
                self.counters.cancelled_while_queued();
                unread.push((id, Outcome::Cancelled));
            }
        }
        drop(results);
        self.join_workers().await;
        unread
    }

    async fn join_workers(&mut self) {
        while let Some(joined) = self.workers.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "worker task failed");
            }
        }
    }
}

async fn worker<In, Out, E, F, Fut>(
    queue: Arc<AsyncMutex<mpsc::Receiver<(JobId, In)>>>,
    results: mpsc::Sender<Finished<Out, E>>,
    handler: Arc<F>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
) where
    F: Fn(In) -> Fut,
    Fut: Future<Output = Result<Out, E>>,
{
    loop {
        // One worker at a time waits on the queue; the lock is released before the job runs.
        let next = {
            let mut queue = queue.lock().await;
            tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                job = queue.recv() => job,
            }
        };
        let Some((id, input)) = next else { return };
        counters.started();
        let run = AssertUnwindSafe(async { handler(input).await }).catch_unwind();
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            result = run => Some(result),
        };
        let outcome = match outcome {
            None => {
                counters.cancelled_while_running();
                Outcome::Cancelled
            }
            Some(Ok(Ok(value))) => {
                counters.finished(true);
                Outcome::Ok(value)
            }
            Some(Ok(Err(error))) => {
                counters.finished(false);
                Outcome::Err(error)
            }
            Some(Err(panic)) => {
                counters.finished(false);
                Outcome::Panicked(panic_message(panic))
            }
        };
        if results.send((id, outcome)).await.is_err() {
            return; // The pool is gone; nobody is listening.
        }
    }
}
