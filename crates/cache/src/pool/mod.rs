//! A hand-written async resource pool — the Go course's connection pool, in Rust. Written by
//! hand on purpose (the mission asks for it, and loom must be able to see all of it); for
//! database connections Stride uses sqlx's pool.
//!
//! Guarantees:
//! - **Never over capacity**: at most `max_size` resources exist (idle, lent, or being made).
//! - **Exclusive**: a resource is lent to one holder at a time, through a [`Pooled`] guard that
//!   gives it back when dropped — also on panic and when the holder's task is cancelled.
//! - **FIFO fairness**: when the pool is exhausted, acquirers queue; a returned resource (or
//!   freed capacity) is handed *directly* to the longest waiter, so newcomers cannot barge.
//! - **No lost wake-ups**: an acquire future dropped after it was handed a resource but before
//!   it ran again passes the resource on to the next waiter (or back to idle).
//! - **Checked on checkout**: [`Manager::recycle`] may await (a PING); a resource that fails it
//!   is discarded and replaced. A guard's drop cannot await, so on return only the synchronous
//!   [`Manager::is_broken`] is consulted; broken resources are discarded and their capacity
//!   handed on.
//! - **Idle timeout**: resources idle longer than `idle_timeout` are discarded at checkout.
//! - **`close`** drops idle resources and wakes every waiter with [`PoolError::Closed`];
//!   resources still lent are dropped when they come back.
//!
//! Locking: `Inner::state` is the only lock held while touching the queue; a waiter's own slot
//! lock is taken *after* it (never the other way round). Wakers are called after both locks
//! are released. Loom models: `loom_models` beside this file.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use stride_concurrency::sync::{Arc, Mutex};
use tokio::time::Instant;

mod guard;
mod manager;

pub use guard::Pooled;
pub use manager::{Manager, PoolConfig, PoolError, PoolStatus};

pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

/// Written by hand: `#[derive(Clone)]` would demand `M: Clone`, but clones share one `Inner`.
impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct Inner<M: Manager> {
    manager: M,
    config: PoolConfig,
    // A sync lock: never held across an await, and wakers are called after it is released.
    state: Mutex<State<M::Resource>>,
}

struct State<R> {
    idle: VecDeque<Idle<R>>,
    /// Idle + lent + being made. Invariant: `size <= max_size`.
    size: usize,
    /// Invariant: non-empty only while `idle` is empty and `size == max_size`.
    waiters: VecDeque<Arc<Waiter<R>>>,
    closed: bool,
}

struct Idle<R> {
    resource: R,
    since: Instant,
}

/// What a waiter is handed: a resource, or one unit of capacity to fill with a new resource.
enum Grant<R> {
    Resource(R),
    Capacity,
}

struct Waiter<R> {
    // Locked only while `Inner::state` is held or by the waiter's own poll.
    slot: Mutex<WaiterSlot<R>>,
}

enum WaiterSlot<R> {
    Waiting(Option<Waker>),
    Granted(Grant<R>),
    Closed,
    /// The acquire future took its grant (or its `Closed`).
    Done,
}

impl<M: Manager> Pool<M> {
    pub fn new(manager: M, config: PoolConfig) -> Self {
        let state = State { idle: VecDeque::new(), size: 0, waiters: VecDeque::new(), closed: false };
        Self { inner: Arc::new(Inner { manager, config, state: Mutex::new(state) }) }
    }

    /// A resource, waiting at most `acquire_timeout` for one.
    pub async fn acquire(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        match tokio::time::timeout(self.inner.config.acquire_timeout, self.acquire_untimed()).await {
            Ok(result) => result,
            Err(_) => Err(PoolError::Timeout),
        }
    }

    /// A resource, waiting as long as it takes (the caller bounds it, e.g. with a deadline).
    pub async fn acquire_untimed(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        let mut slot = match Inner::checkout(&self.inner) {
            Checkout::Ready(slot) => slot,
            Checkout::Closed => return Err(PoolError::Closed),
            Checkout::Wait(waiter) => WaitForGrant { inner: &self.inner, waiter: Some(waiter) }.await?,
        };
        if let Some(resource) = slot.resource.as_mut() {
            if self.inner.manager.recycle(resource).await {
                return Ok(slot.lend());
            }
            tracing::debug!("pooled resource failed its recycle check; replacing it");
            slot.resource = None;
        }
        // We hold one unit of capacity: fill it. If this fails or is cancelled, `slot`'s drop
        // gives the capacity back.
        match self.inner.manager.create().await {
            Ok(resource) => {
                slot.resource = Some(resource);
                Ok(slot.lend())
            }
            Err(e) => Err(PoolError::Create(e)),
        }
    }

    /// Drops idle resources, fails every waiter and every later `acquire` with `Closed`.
    pub fn close(&self) {
        let (idle, wakers) = {
            let mut state = self.inner.state.lock();
            state.closed = true;
            let idle: Vec<Idle<M::Resource>> = state.idle.drain(..).collect();
            state.size -= idle.len();
            let mut wakers = Vec::new();
            for waiter in state.waiters.drain(..) {
                let mut slot = waiter.slot.lock();
                if let WaiterSlot::Waiting(waker) = std::mem::replace(&mut *slot, WaiterSlot::Closed) {
                    wakers.extend(waker);
                }
            }
            (idle, wakers)
        };
        drop(idle);
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn status(&self) -> PoolStatus {
        let state = self.inner.state.lock();
        PoolStatus {
            max_size: self.inner.config.max_size,
            size: state.size,
            idle: state.idle.len(),
            waiting: state.waiters.len(),
            closed: state.closed,
        }
    }
}

enum Checkout<M: Manager> {
    Ready(Slot<M>),
    Wait(Arc<Waiter<M::Resource>>),
    Closed,
}

impl<M: Manager> Inner<M> {
    fn checkout(this: &Arc<Self>) -> Checkout<M> {
        let mut state = this.state.lock();
        if state.closed {
            return Checkout::Closed;
        }
        if let Some(max_idle) = this.config.idle_timeout {
            let now = Instant::now();
            let before = state.idle.len();
            state.idle.retain(|idle| now.duration_since(idle.since) < max_idle);
            let expired = before - state.idle.len();
            state.size -= expired;
        }
        // LIFO: the most recently used resource is the likeliest to still be healthy.
        if let Some(idle) = state.idle.pop_back() {
            return Checkout::Ready(Slot::new(this.clone(), Some(idle.resource)));
        }
        if state.size < this.config.max_size {
            state.size += 1;
            return Checkout::Ready(Slot::new(this.clone(), None));
        }
        let waiter = Arc::new(Waiter { slot: Mutex::new(WaiterSlot::Waiting(None)) });
        state.waiters.push_back(waiter.clone());
        Checkout::Wait(waiter)
    }

    /// Hands `grant` to the longest waiter, or returns it to the pool. Must be called with the
    /// state locked; returns the waker to call once the lock is released.
    fn give_back(&self, state: &mut State<M::Resource>, grant: Grant<M::Resource>) -> Option<Waker> {
        if state.closed {
            state.size -= 1;
            return None; // the resource, if any, is dropped with `grant`
        }
        if let Some(waiter) = state.waiters.pop_front() {
            let mut slot = waiter.slot.lock();
            #[cfg(not(stride_mutant = "pool_wakeup_without_grant"))]
            let previous = std::mem::replace(&mut *slot, WaiterSlot::Granted(grant));
            // Seeded bug for the loom gate: the waiter is woken but handed nothing.
            #[cfg(stride_mutant = "pool_wakeup_without_grant")]
            let previous = {
                drop(grant);
                std::mem::replace(&mut *slot, WaiterSlot::Waiting(None))
            };
            return match previous {
                WaiterSlot::Waiting(waker) => waker,
                _ => unreachable!("only waiting waiters are queued"),
            };
        }
        match grant {
            Grant::Resource(resource) => state.idle.push_back(Idle { resource, since: Instant::now() }),
            Grant::Capacity => state.size -= 1,
        }
        None
    }

    fn give_back_and_wake(&self, grant: Grant<M::Resource>) {
        let waker = {
            let mut state = self.state.lock();
            self.give_back(&mut state, grant)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One unit of capacity held by an acquire in progress, with or without a resource in it. If
/// the acquire fails or is cancelled before lending it out, dropping the slot discards any
/// resource (it was never checked) and hands the capacity on.
struct Slot<M: Manager> {
    inner: Arc<Inner<M>>,
    resource: Option<M::Resource>,
    /// Set once the capacity passed to a `Pooled` guard, which then owns giving it back.
    lent: bool,
}

impl<M: Manager> Slot<M> {
    fn new(inner: Arc<Inner<M>>, resource: Option<M::Resource>) -> Self {
        Self { inner, resource, lent: false }
    }

    fn lend(mut self) -> Pooled<M> {
        let resource = self.resource.take().expect("lend is called with a resource");
        self.lent = true;
        Pooled::lend(self.inner.clone(), resource)
    }
}

impl<M: Manager> Drop for Slot<M> {
    fn drop(&mut self) {
        if !self.lent {
            drop(self.resource.take());
            self.inner.give_back_and_wake(Grant::Capacity);
        }
    }
}

/// Waits for a grant. Dropping it while still queued leaves the queue; dropping it after a
/// grant arrived but before it was taken passes the grant on — a wake-up is never lost.
struct WaitForGrant<'a, M: Manager> {
    inner: &'a Arc<Inner<M>>,
    waiter: Option<Arc<Waiter<M::Resource>>>,
}

impl<M: Manager> Future for WaitForGrant<'_, M> {
    type Output = Result<Slot<M>, PoolError<M::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let waiter = self.waiter.as_ref().expect("polled after completion");
        let mut slot = waiter.slot.lock();
        match std::mem::replace(&mut *slot, WaiterSlot::Done) {
            WaiterSlot::Granted(grant) => {
                drop(slot);
                self.waiter = None;
                let resource = match grant {
                    Grant::Resource(resource) => Some(resource),
                    Grant::Capacity => None,
                };
                Poll::Ready(Ok(Slot::new(self.inner.clone(), resource)))
            }
            WaiterSlot::Closed => {
                drop(slot);
                self.waiter = None;
                Poll::Ready(Err(PoolError::Closed))
            }
            WaiterSlot::Waiting(_) => {
                *slot = WaiterSlot::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
            WaiterSlot::Done => unreachable!("a finished waiter is not polled"),
        }
    }
}

impl<M: Manager> Drop for WaitForGrant<'_, M> {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let waker: Option<Waker> = {
            let mut state = self.inner.state.lock();
            let mut slot = waiter.slot.lock();
            match std::mem::replace(&mut *slot, WaiterSlot::Done) {
                WaiterSlot::Waiting(_) => {
                    state.waiters.retain(|queued| !Arc::ptr_eq(queued, &waiter));
                    None
                }
                WaiterSlot::Granted(grant) => {
                    drop(slot);
                    #[cfg(not(stride_mutant = "pool_grant_lost_on_drop"))]
                    {
                        self.inner.give_back(&mut state, grant)
                    }
                    // Seeded bug for the loom gate: the grant is dropped, its capacity lost.
                    #[cfg(stride_mutant = "pool_grant_lost_on_drop")]
                    {
                        drop(grant);
                        None
                    }
                }
                WaiterSlot::Closed | WaiterSlot::Done => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
