//! Behaviour of the resource pool under tokio, and a stress loop. Interleaving-level proofs
//! (every schedule, not just the ones a run happens to hit) are the loom models.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::noop_waker;
use parking_lot::Mutex;
use stride_cache::{Manager, Pool, PoolConfig, PoolError};

/// Hands out numbered resources and lets tests make creation fail or resources look broken.
#[derive(Default)]
struct NumbersState {
    created: AtomicUsize,
    fail_next_create: AtomicBool,
    reject_on_recycle: AtomicBool,
    broken: Mutex<HashSet<usize>>,
}

#[derive(Default, Clone)]
struct Numbers(Arc<NumbersState>);

impl std::ops::Deref for Numbers {
    type Target = NumbersState;
    fn deref(&self) -> &NumbersState {
        &self.0
    }
}

impl Manager for Numbers {
    type Resource = usize;
    type Error = String;

    async fn create(&self) -> Result<usize, String> {
        if self.fail_next_create.swap(false, Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        Ok(self.created.fetch_add(1, Ordering::SeqCst))
    }

    async fn recycle(&self, _: &mut usize) -> bool {
        !self.reject_on_recycle.swap(false, Ordering::SeqCst)
    }

    fn is_broken(&self, resource: &usize) -> bool {
        self.broken.lock().contains(resource)
    }
}

fn pool(max: usize) -> (Pool<Numbers>, Numbers) {
    let manager = Numbers::default();
    (Pool::new(manager.clone(), PoolConfig::new(max)), manager)
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let waker = noop_waker();
    future.poll(&mut Context::from_waker(&waker))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_reused_and_never_exceed_capacity() {
    let (pool, manager) = pool(2);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    assert_ne!(*a, *b);
    assert_eq!(pool.status().size, 2);
    drop(a);
    let c = pool.acquire().await.unwrap();
    assert_eq!(manager.created.load(Ordering::SeqCst), 2, "the returned resource was reused");
    drop((b, c));
    let status = pool.status();
    assert_eq!((status.size, status.idle, status.waiting), (2, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_first_come_first_served() {
    let (pool, _) = pool(1);
    let held = pool.acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for name in ["first", "second", "third"] {
        let (pool_, order) = (pool.clone(), order.clone());
        let expected_waiting = waiters.len() + 1;
        waiters.push(tokio::spawn(async move {
            let resource = pool_.acquire().await.unwrap();
            order.lock().push(name);
            drop(resource);
        }));
        while pool.status().waiting != expected_waiting {
            tokio::task::yield_now().await;
        }
    }
    // A newcomer that arrives while others wait must queue behind them, not barge.
    drop(held);
    let newcomer = pool.acquire().await.unwrap();
    order.lock().push("newcomer");
    drop(newcomer);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(*order.lock(), ["first", "second", "third", "newcomer"]);
}

#[tokio::test(start_paused = true)]
async fn an_acquire_times_out_and_leaves_the_queue() {
    let manager = Numbers::default();
    let config = PoolConfig { acquire_timeout: Duration::from_millis(100), ..PoolConfig::new(1) };
    let pool = Pool::new(manager, config);
    let held = pool.acquire().await.unwrap();
    assert!(matches!(pool.acquire().await, Err(PoolError::Timeout)));
    assert_eq!(pool.status().waiting, 0);
    drop(held);
    assert!(pool.acquire().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_comes_back_when_its_holder_panics_or_is_cancelled() {
    let (pool, _) = pool(1);
    let panicking = pool.clone();
    let result = tokio::spawn(async move {
        let _resource = panicking.acquire().await.unwrap();
        panic!("holder crashed");
    })
    .await;
    assert!(result.is_err());
    assert_eq!(pool.status().idle, 1, "returned during unwinding");

    let holder = pool.clone();
    let (acquired_tx, acquired_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _resource = holder.acquire().await.unwrap();
        let _ = acquired_tx.send(());
        std::future::pending::<()>().await;
    });
    acquired_rx.await.unwrap();
    assert_eq!(pool.status().idle, 0);
    task.abort();
    let _ = task.await;
    assert_eq!(pool.status().idle, 1, "returned when the holder was cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_failing_its_checkout_check_is_replaced() {
    let (pool, manager) = pool(1);
    drop(pool.acquire().await.unwrap());
    manager.reject_on_recycle.store(true, Ordering::SeqCst);
    let replacement = pool.acquire().await.unwrap();
    assert_eq!(*replacement, 1);
    assert_eq!(pool.status().size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_resource_is_discarded_on_return() {
    let (pool, manager) = pool(1);
    let resource = pool.acquire().await.unwrap();
    manager.broken.lock().insert(*resource);
    drop(resource);
    assert_eq!((pool.status().size, pool.status().idle), (0, 0));
    assert_eq!(*pool.acquire().await.unwrap(), 1);
    let explicit = pool.acquire().await.unwrap();
    explicit.discard();
    assert_eq!(pool.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn idle_resources_expire() {
    let manager = Numbers::default();
    let config = PoolConfig { idle_timeout: Some(Duration::from_secs(30)), ..PoolConfig::new(2) };
    let pool = Pool::new(manager.clone(), config);
    drop(pool.acquire().await.unwrap());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(*pool.acquire().await.unwrap(), 0, "still fresh");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(*pool.acquire().await.unwrap(), 1, "expired and replaced");
    assert_eq!(pool.status().size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_every_waiter_and_refuses_later_acquires() {
    let (pool, _) = pool(1);
    let held = pool.acquire().await.unwrap();
    let mut waiters = Vec::new();
    for n in 1..=3 {
        let pool_ = pool.clone();
        waiters.push(tokio::spawn(async move { pool_.acquire_untimed().await.map(|r| *r) }));
        while pool.status().waiting != n {
            tokio::task::yield_now().await;
        }
    }
    pool.close();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), Err(PoolError::Closed));
    }
    assert!(matches!(pool.acquire().await, Err(PoolError::Closed)));
    drop(held);
    assert_eq!(pool.status().size, 0, "a resource returned after close is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_gives_its_capacity_back() {
    let (pool, manager) = pool(1);
    manager.fail_next_create.store(true, Ordering::SeqCst);
    assert_eq!(pool.acquire().await.err(), Some(PoolError::Create("connection refused".into())));
    assert_eq!(pool.status().size, 0);
    assert!(pool.acquire().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquire_dropped_after_it_was_handed_a_resource_passes_it_on() {
    let (pool, _) = pool(1);
    let held = pool.acquire().await.unwrap();
    let mut second = Box::pin(pool.acquire_untimed());
    let mut third = Box::pin(pool.acquire_untimed());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    drop(held); // handed to `second`, which is never polled again...
    // ...and is dropped: the resource must move on to `third`, not vanish.
    drop(second);
    match poll_once(third.as_mut()) {
        Poll::Ready(Ok(resource)) => assert_eq!(*resource, 0),
        other => panic!("the hand-off was lost: {:?}", other.map(|r| r.map(|x| *x))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_capacity_and_exclusivity_hold_under_contention() {
    for iteration in 0..stride_concurrency::testing::stress_iterations() {
        let max = (iteration % 4 + 1) as usize;
        let tasks = (iteration * 7 % 24 + 2) as usize;
        let (pool, _) = pool(max);
        let in_use = Arc::new(Mutex::new(HashSet::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (pool, in_use, peak) = (pool.clone(), in_use.clone(), peak.clone());
            handles.push(tokio::spawn(async move {
                for round in 0..5 {
                    let resource = pool.acquire_untimed().await.unwrap();
                    {
                        let mut set = in_use.lock();
                        assert!(set.insert(*resource), "resource {} lent twice", *resource);
                        peak.fetch_max(set.len(), Ordering::SeqCst);
                    }
                    for _ in 0..((t + round) % 3) {
                        tokio::task::yield_now().await;
                    }
                    in_use.lock().remove(&*resource);
                    drop(resource);
                }
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
        let status = pool.status();
        assert!(peak.load(Ordering::SeqCst) <= max, "iteration {iteration}: over capacity");
        assert_eq!((status.idle, status.waiting), (status.size, 0), "iteration {iteration}: leaked {status:?}");
        assert!(status.size <= max);
    }
}
