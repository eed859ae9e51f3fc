//! Benchmarks behind the ratio gates of `cargo xtask bench` (see README, "Benchmarks").
//!
//! - `dispatch`: the worker pool's per-job overhead against a bare tokio mpsc loop with the
//!   same number of consumer tasks.
//! - `fan_out`: `try_map_concurrent` (the feed's fan-out) over simulated 1 ms I/O calls at limits 1, 5 and 50 against
//!   awaiting them one after another.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use stride_concurrency::{WorkerPool, try_map_concurrent};
use tokio::sync::{Mutex, mpsc};

const JOBS: u64 = 1_000;
const WORKERS: usize = 2;
const CALLS: u64 = 50;
const SIMULATED_IO: Duration = Duration::from_millis(1);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn bare_mpsc_loop(jobs: u64) -> u64 {
    let (job_tx, job_rx) = mpsc::channel::<u64>(64);
    let (result_tx, mut result_rx) = mpsc::channel::<u64>(64 + WORKERS);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut consumers = Vec::new();
    for _ in 0..WORKERS {
        let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
        consumers.push(tokio::spawn(async move {
            loop {
                let job = job_rx.lock().await.recv().await;
                let Some(job) = job else { break };
                if result_tx.send(black_box(job) * 2).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(result_tx);
    let feeder = tokio::spawn(async move {
        for job in 0..jobs {
            job_tx.send(job).await.expect("consumers alive");
        }
    });
    let mut sum = 0;
    while let Some(result) = result_rx.recv().await {
        sum += result;
    }
    feeder.await.expect("feeder");
    sum
}

async fn worker_pool(jobs: u64) -> u64 {
    let pool = WorkerPool::new(WORKERS, 64, |job: u64| async move { Ok::<_, ()>(black_box(job) * 2) });
    pool.process(0..jobs).await.into_iter().filter_map(|(_, outcome)| outcome.ok()).sum()
}

fn dispatch(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("dispatch");
    group.bench_function("mpsc_loop", |b| b.to_async(&rt).iter(|| bare_mpsc_loop(JOBS)));
    group.bench_function("worker_pool", |b| b.to_async(&rt).iter(|| worker_pool(JOBS)));
    group.finish();
}

async fn simulated_call(i: u64) -> u64 {
    tokio::time::sleep(SIMULATED_IO).await;
    i
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fan_out");
    group.sample_size(10);
    group.bench_function("sequential", |b| {
        b.to_async(&rt).iter(|| async {
            let mut results = Vec::with_capacity(CALLS as usize);
            for i in 0..CALLS {
                results.push(simulated_call(i).await);
            }
            results
        })
    });
    for limit in [1usize, 5, 50] {
        group.bench_with_input(BenchmarkId::new("try_map_concurrent", limit), &limit, |b, &limit| {
            b.to_async(&rt)
                .iter(|| try_map_concurrent(0..CALLS, limit, |i| async move { Ok::<_, ()>(simulated_call(i).await) }))
        });
    }
    group.finish();
}

criterion_group!(benches, dispatch, fan_out);
criterion_main!(benches);
