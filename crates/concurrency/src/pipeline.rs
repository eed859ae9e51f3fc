//! Stages joined by bounded channels, each stage with its own concurrency. Hand-written on
//! purpose: it is one of the primitives Stride's mission asks us to build (photo re-processing
//! runs read → resize → thumbnail → upload on it).
//!
//! Guarantees:
//! - **Exactly one outcome per accepted item**: `Ok` from the last stage, `Err` naming the
//!   stage that failed, `Panicked`, or `Cancelled` — never none, never two, and no item is
//!   processed twice.
//! - **First failure stops everything**: an error or panic in any stage (or [`Pipeline::cancel`])
//!   cancels the shared token; stages stop taking new items, running items stop at their next
//!   `.await`, items waiting in channels are reported `Cancelled`, and `submit` refuses new ones.
//! - **Backpressure**: every channel is bounded; a slow stage slows its upstream down to
//!   `submit`.
//! - **Draining**: after [`Pipeline::close`] the remaining items flow out in order of
//!   completion and `next` returns `None` once all are reported.
//! - **Drop** aborts every stage task.
//!
//! As with the worker pool, do not `submit` and `next` in sequence from one task with bounded
//! channels full; [`Pipeline::run`] does both at once.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::outcome::panic_message;
use std::sync::Arc;

/// Why an item did not make it out of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageFailure<E> {
    Err { stage: &'static str, error: E },
    Panicked { stage: &'static str, message: String },
    Cancelled,
}

/// `submit` after `close`, or after the pipeline was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline no longer accepts items")]
pub struct PipelineClosed;

type Failures<E> = mpsc::UnboundedSender<(u64, StageFailure<E>)>;

/// Builds a pipeline stage by stage; each `stage` call starts that stage's task at once.
pub struct PipelineBuilder<In, Cur, E> {
    input: mpsc::Sender<(u64, In)>,
    current: mpsc::Receiver<(u64, Cur)>,
    failures_tx: Failures<E>,
    failures_rx: mpsc::UnboundedReceiver<(u64, StageFailure<E>)>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    capacity: usize,
}

pub struct Pipeline<In, Out, E> {
    /// The first stage's bounded queue; `None` once intake is closed, which lets the stages
    /// drain and end one after another.
    input: Option<mpsc::Sender<(u64, In)>>,
    /// The last stage's output, bounded like every channel between stages (backpressure).
    successes: mpsc::Receiver<(u64, Out)>,
    /// Failures from any stage. Unbounded on purpose: a failing stage must never block on
    /// reporting, and there is at most one failure per accepted item.
    failures: mpsc::UnboundedReceiver<(u64, StageFailure<E>)>,
    successes_done: bool,
    /// Signalled by the first failure; every stage worker watches it and stops taking work.
    cancel: CancellationToken,
    /// Owns the stage workers: dropping the pipeline aborts them.
    tasks: JoinSet<()>,
    /// Sequence number of the next accepted item, so outcomes can be matched to inputs.
    next_seq: u64,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In: Send + 'static, E: Send + 'static> Pipeline<In, In, E> {
    /// A pipeline whose channels each hold `capacity` items (at least one).
    pub fn builder(capacity: usize) -> PipelineBuilder<In, In, E> {
        let capacity = capacity.max(1);
        let (input, current) = mpsc::channel(capacity);
        let (failures_tx, failures_rx) = mpsc::unbounded_channel();
        PipelineBuilder {
            input,
            current,
            failures_tx,
            failures_rx,
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
            capacity,
        }
    }
}

impl<In, Cur, E> PipelineBuilder<In, Cur, E>
where
    In: Send + 'static,
    Cur: Send + 'static,
    E: Send + 'static,
{
    /// Adds a stage running `work` on up to `concurrency` items at once.
    pub fn stage<Next, F, Fut>(
        mut self,
        name: &'static str,
        concurrency: usize,
        work: F,
    ) -> PipelineBuilder<In, Next, E>
    where
        Next: Send + 'static,
        F: Fn(Cur) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Next, E>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.capacity);
        let stage = Stage {
            name,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            work: Arc::new(work),
            downstream: tx,
            failures: self.failures_tx.clone(),
            cancel: self.cancel.clone(),
        };
        self.tasks.spawn(stage.run(self.current));
        PipelineBuilder {
            input: self.input,
            current: rx,
            failures_tx: self.failures_tx,
            failures_rx: self.failures_rx,
            cancel: self.cancel,
            tasks: self.tasks,
            capacity: self.capacity,
        }
    }

    pub fn build(self) -> Pipeline<In, Cur, E> {
        // Our own sender is dropped here: the failure stream ends when every stage has ended.
        drop(self.failures_tx);
        Pipeline {
            input: Some(self.input),
            successes: self.current,
            failures: self.failures_rx,
            successes_done: false,
            cancel: self.cancel,
            tasks: self.tasks,
            next_seq: 0,
            _types: PhantomData,
        }
    }
}

impl<In, Out, E> Pipeline<In, Out, E>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Send + 'static,
{
    /// Feeds one item, waiting while the first channel is full. Returns the item's sequence
    /// number, which its outcome carries.
    pub async fn submit(&mut self, item: In) -> Result<u64, PipelineClosed> {
        let input = self.input.as_ref().ok_or(PipelineClosed)?;
        let permit = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(PipelineClosed),
            permit = input.reserve() => permit.map_err(|_| PipelineClosed)?,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        permit.send((seq, item));
        Ok(seq)
    }

    /// No more items; those inside drain out.
    pub fn close(&mut self) {
        self.input = None;
    }

    /// Stops the pipeline as a failure would.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The token [`Pipeline::cancel`] cancels, for whoever must stop the pipeline while
    /// [`Pipeline::run`] owns it (an import's watcher, when its lease is lost); it is also
    /// cancelled by the first failure, so it tells a watcher when to stop watching.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The next outcome, in order of completion; `None` once every accepted item is reported
    /// (after `close` or a failure).
    pub async fn next(&mut self) -> Option<(u64, Outcome<Out, E>)> {
        loop {
            tokio::select! {
                failure = self.failures.recv() => match failure {
                    Some((seq, failure)) => return Some((seq, failure.into())),
                    // Every stage has ended, so the success channel is closed too; drain it.
                    None => return self.successes.recv().await.map(|(seq, out)| (seq, Outcome::Ok(out))),
                },
                success = self.successes.recv(), if !self.successes_done => match success {
                    Some((seq, out)) => return Some((seq, Outcome::Ok(out))),
                    None => self.successes_done = true,
                },
            }
        }
    }

    /// Feeds every item and collects every outcome from this one task (no deadlock however
    /// small the channels), then waits for all stage tasks to end.
    pub async fn run(mut self, items: impl IntoIterator<Item = In>) -> Vec<(u64, Outcome<Out, E>)> {
        let mut items = items.into_iter().peekable();
        let mut outcomes = Vec::new();
        let cancel = self.cancel.clone();
        while items.peek().is_some() {
            let Some(input) = self.input.clone() else {
                break;
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                permit = input.reserve() => match permit {
                    Ok(permit) => {
                        permit.send((self.next_seq, items.next().expect("peeked")));
                        self.next_seq += 1;
                    }
                    Err(_) => break,
                },
                Some(outcome) = self.next() => outcomes.push(outcome),
            }
        }
        self.close();
        while let Some(outcome) = self.next().await {
            outcomes.push(outcome);
        }
        self.join().await;
        outcomes
    }

    /// [`Pipeline::run`] for work that arrives as a stream (pages read from a database), each
    /// outcome handed to `on_outcome` as it comes instead of collected: the pipeline's own
    /// memory stays the channels' and the stages', however many items pass through it.
    pub async fn drive<St>(mut self, items: St, mut on_outcome: impl FnMut(u64, Outcome<Out, E>))
    where
        St: futures::Stream<Item = In> + Send,
    {
        let mut items = std::pin::pin!(futures::StreamExt::fuse(items));
        let cancel = self.cancel.clone();
        // An item taken from the stream that the first channel had no room for yet.
        let mut pending: Option<In> = None;
        loop {
            let Some(input) = self.input.clone() else { break };
            if pending.is_none() {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    next = futures::StreamExt::next(&mut items) => match next {
                        Some(item) => pending = Some(item),
                        None => break,
                    },
                    Some((seq, outcome)) = self.next() => on_outcome(seq, outcome),
                }
                continue;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                permit = input.reserve() => match permit {
                    Ok(permit) => {
                        permit.send((self.next_seq, pending.take().expect("an item is pending")));
                        self.next_seq += 1;
                    }
                    Err(_) => break,
                },
                Some((seq, outcome)) = self.next() => on_outcome(seq, outcome),
            }
        }
        self.close();
        while let Some((seq, outcome)) = self.next().await {
            on_outcome(seq, outcome);
        }
        self.join().await;
    }

    /// Waits for every stage task to end (after `close` or `cancel`).
    pub async fn join(&mut self) {
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "pipeline stage task failed");
            }
        }
    }
}

impl<T, E> From<StageFailure<E>> for Outcome<T, E> {
    fn from(failure: StageFailure<E>) -> Self {
        match failure {
            StageFailure::Err { error, .. } => Outcome::Err(error),
            StageFailure::Panicked { stage, message } => Outcome::Panicked(format!("stage {stage}: {message}")),
            StageFailure::Cancelled => Outcome::Cancelled,
        }
    }
}

struct Stage<F, Next, E> {
    name: &'static str,
    slots: Arc<Semaphore>,
    work: Arc<F>,
    downstream: mpsc::Sender<(u64, Next)>,
    failures: Failures<E>,
    cancel: CancellationToken,
}

impl<F, Next, E> Stage<F, Next, E>
where
    Next: Send + 'static,
    E: Send + 'static,
{
    async fn run<Cur, Fut>(self, mut upstream: mpsc::Receiver<(u64, Cur)>)
    where
        Cur: Send + 'static,
        F: Fn(Cur) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Next, E>> + Send + 'static,
    {
        let mut running = JoinSet::new();
        loop {
            let next = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                next = upstream.recv() => next,
            };
            let Some((seq, item)) = next else { break };
            let slot = tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    self.report(seq, StageFailure::Cancelled);
                    break;
                }
                slot = self.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            running.spawn(self.process(seq, item, slot));
            // Reap finished items as we go so the set stays as small as the concurrency.
            while running.try_join_next().is_some() {}
        }
        // Cancelled (or upstream closed): whatever still waits upstream will never run.
        upstream.close();
        while let Some((seq, _)) = upstream.recv().await {
            self.report(seq, StageFailure::Cancelled);
        }
        while running.join_next().await.is_some() {}
    }

    fn process<Cur, Fut>(
        &self,
        seq: u64,
        item: Cur,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        Cur: Send + 'static,
        F: Fn(Cur) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Next, E>> + Send + 'static,
    {
        let (name, work, downstream, failures, cancel) =
            (self.name, self.work.clone(), self.downstream.clone(), self.failures.clone(), self.cancel.clone());
        async move {
            let _slot = slot;
            let run = AssertUnwindSafe(async { work(item).await }).catch_unwind();
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                result = run => Some(result),
            };
            let failure = match result {
                None => StageFailure::Cancelled,
                Some(Ok(Ok(value))) => {
                    // Wait for room downstream, unless the pipeline is cancelled meanwhile.
                    let permit = tokio::select! {
                        biased;
                        () = cancel.cancelled() => None,
                        permit = downstream.reserve() => permit.ok(),
                    };
                    match permit {
                        Some(permit) => {
                            permit.send((seq, value));
                            return;
                        }
                        None => StageFailure::Cancelled,
                    }
                }
                Some(Ok(Err(error))) => {
                    cancel.cancel();
                    StageFailure::Err { stage: name, error }
                }
                Some(Err(panic)) => {
                    cancel.cancel();
                    StageFailure::Panicked { stage: name, message: panic_message(panic) }
                }
            };
            let _ = failures.send((seq, failure));
        }
    }

    fn report(&self, seq: u64, failure: StageFailure<E>) {
        // The receiver lives as long as the pipeline; if it is gone, nobody is listening.
        let _ = self.failures.send((seq, failure));
    }
}
