//! The resource pool's acquire/release cost against the simplest possible pool: a mutex
//! around a `VecDeque` (no waiting, no fairness, no health checks). Contended: two tasks on a
//! two-thread runtime, each doing 1,000 acquire/release pairs on a pool of two resources.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;
use stride_cache::{Manager, Pool, PoolConfig};

const TASKS: usize = 2;
const ROUNDS: usize = 1_000;

struct Numbers;

impl Manager for Numbers {
    type Resource = u64;
    type Error = String;

    async fn create(&self) -> Result<u64, String> {
        Ok(7)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn contention(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pool_contention");

    let bare: Arc<Mutex<VecDeque<u64>>> = Arc::new(Mutex::new((0..TASKS as u64).collect()));
    group.bench_function("mutex_vecdeque", |b| {
        b.to_async(&rt).iter(|| {
            let bare = bare.clone();
            async move {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let bare = bare.clone();
                        tokio::spawn(async move {
                            for _ in 0..ROUNDS {
                                let resource = bare.lock().pop_front().expect("one per task");
                                black_box(resource);
                                bare.lock().push_back(resource);
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
            }
        })
    });

    let pool = Pool::new(Numbers, PoolConfig::new(TASKS));
    group.bench_function("pool", |b| {
        b.to_async(&rt).iter(|| {
            let pool = pool.clone();
            async move {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let pool = pool.clone();
                        tokio::spawn(async move {
                            for _ in 0..ROUNDS {
                                let resource = pool.acquire_untimed().await.expect("pool open");
                                black_box(*resource);
                                drop(resource);
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
