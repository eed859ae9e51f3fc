//! Loom models of the resource pool (`cargo xtask loom`): every interleaving of acquire,
//! release, close and a cancelled acquire, up to the preemption bound. Each model has a seeded
//! mutant (`--cfg stride_mutant=...`, set only by xtask) that loom must catch.

use std::future::Future;
use std::task::{Context, Poll};

use loom::thread;
use stride_concurrency::sync::{Arc, AtomicUsize, Ordering};

use crate::{Manager, Pool, PoolConfig, PoolError};

#[derive(Default)]
struct Numbers {
    created: AtomicUsize,
}

impl Manager for Arc<Numbers> {
    type Resource = usize;
    type Error = String;

    async fn create(&self) -> Result<usize, String> {
        Ok(self.created.fetch_add(1, Ordering::SeqCst))
    }
}

fn pool(max: usize) -> Pool<Arc<Numbers>> {
    Pool::new(Arc::new(Numbers::default()), PoolConfig::new(max))
}

fn assert_settled(pool: &Pool<Arc<Numbers>>, max: usize) {
    let status = pool.status();
    assert!(status.size <= max, "over capacity: {status:?}");
    assert_eq!(status.waiting, 0, "a waiter was left behind: {status:?}");
    assert_eq!(status.idle, status.size, "a resource leaked: {status:?}");
}

/// Never over capacity, never one resource to two holders, nothing leaked.
/// Mutant: `pool_wakeup_without_grant` (a waiter is woken but handed nothing → deadlock).
#[test]
fn holders_are_exclusive_and_within_capacity() {
    loom::model(|| {
        let pool = pool(1);
        let holders = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (pool, holders) = (pool.clone(), holders.clone());
                thread::spawn(move || {
                    let resource = loom::future::block_on(pool.acquire_untimed()).unwrap();
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    assert_eq!(*resource, 0, "the single resource is reused, never duplicated");
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(resource);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_settled(&pool, 1);
    });
}

/// `close` wakes every waiter, whenever it happens relative to their arrival.
#[test]
fn close_wakes_every_waiter() {
    loom::model(|| {
        let pool = pool(1);
        let held = loom::future::block_on(pool.acquire_untimed()).unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || loom::future::block_on(pool.acquire_untimed()).map(|r| *r))
        };
        let closer = {
            let pool = pool.clone();
            thread::spawn(move || pool.close())
        };
        closer.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Err(PoolError::Closed));
        drop(held);
        assert_eq!(pool.status().size, 0);
    });
}

/// An acquire dropped right after it was handed the resource passes it on instead of losing
/// the slot. Mutant: `pool_grant_lost_on_drop` (the grant is dropped → the next acquire
/// deadlocks).
#[test]
fn a_dropped_acquire_never_loses_a_slot() {
    loom::model(|| {
        let pool = pool(1);
        let held = loom::future::block_on(pool.acquire_untimed()).unwrap();
        let impatient = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut acquire = Box::pin(pool.acquire_untimed());
                let waker = std::task::Waker::noop();
                // Poll once (queue up, or take the resource if it is already back), then give up.
                if let Poll::Ready(resource) = acquire.as_mut().poll(&mut Context::from_waker(waker)) {
                    drop(resource.unwrap());
                }
                drop(acquire);
            })
        };
        let releaser = thread::spawn(move || drop(held));
        impatient.join().unwrap();
        releaser.join().unwrap();
        assert_settled(&pool, 1);
        // The slot is still usable: this would wait forever if it had been lost.
        let again = loom::future::block_on(pool.acquire_untimed()).unwrap();
        assert_eq!(*again, 0);
    });
}
