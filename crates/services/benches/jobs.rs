//! Job-queue benchmarks behind the gates of `cargo xtask bench jobs` (see README, "Background
//! jobs").
//!
//! On each backend, `JOBS` no-op jobs are enqueued in batches, then drained two ways in
//! alternating rounds, each from a freshly filled table:
//! - `queue`: what the runner's primitives do — a batched claim (lease, `attempt + 1`,
//!   `SKIP LOCKED` on PostgreSQL) and a batched fenced completion, one unit of work per batch;
//! - `floor`: the same rows taken off the same table by a bare batched `DELETE … RETURNING`
//!   (no state, no lease, no fencing).
//!
//! Recorded as `interleaved/jobs_<db>/{queue,floor}` (time per job), and on PostgreSQL the
//! median enqueue-to-start latency through LISTEN/NOTIFY against the runner's poll interval
//! (`interleaved/jobs_postgres/{notify_latency_p50,poll_interval}`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use futures::FutureExt;
use stride_concurrency::RetryPolicy;
use stride_domain::{JobId, Lease, NewJob};
use stride_repository::testing::TestDatabase;
use stride_repository::{JobRepo, JobsFloor, PgStore, SqliteStore, Store, StoreConfig, UnitOfWork};
use stride_services::jobs::{JobHandler, JobOutcome, JobRunner, KindConfig, Registered, RunnerConfig};
use stride_services::{Deadline, SystemClock};
use tokio_util::sync::CancellationToken;

const JOBS: usize = 10_000;
const BATCH: u32 = 100;
const ROUNDS: usize = 5;

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(120))
}

async fn fill<S: Store>(store: &S, kind: &str) {
    let now = Utc::now();
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(1_000) {
        let mut uow = store.write(deadline()).await.unwrap();
        for _ in chunk {
            let job = NewJob {
                id: JobId::new(),
                kind: kind.to_owned(),
                payload: "{}".to_owned(),
                max_attempts: 3,
                run_at: now - TimeDelta::seconds(1),
                unique_key: None,
            };
            uow.enqueue(&job, now).await.unwrap();
        }
        uow.commit().await.unwrap();
    }
}

/// Claims and completes every job of `kind`, a batch per unit of work; how many.
async fn drain_queue<S: Store>(store: &S, kind: &str) -> usize {
    let mut done = 0;
    loop {
        let now = Utc::now();
        let mut uow = store.write(deadline()).await.unwrap();
        let leases = uow.claim(kind, now, now + TimeDelta::minutes(5), BATCH).await.unwrap();
        if leases.is_empty() {
            uow.commit().await.unwrap();
            return done;
        }
        let fences: Vec<(JobId, u32)> = leases.iter().map(|l| (l.id(), l.attempt())).collect();
        let completed = uow.complete_batch(&fences, now).await.unwrap();
        assert_eq!(completed as usize, fences.len(), "every fence held");
        uow.commit().await.unwrap();
        done += fences.len();
    }
}

async fn drain_floor<S: Store>(store: &S, kind: &str) -> usize
where
    S::Uow: JobsFloor,
{
    let mut done = 0;
    loop {
        let mut uow = store.write(deadline()).await.unwrap();
        let taken = uow.take_jobs(kind, BATCH).await.unwrap();
        uow.commit().await.unwrap();
        if taken == 0 {
            return done;
        }
        done += taken as usize;
    }
}

fn throughput<S: Store>(rt: &tokio::runtime::Runtime, name: &str, store: &S)
where
    S::Uow: JobsFloor,
{
    let (mut queue, mut floor) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let measure = |which: &str| {
            let kind = format!("bench.{which}.{round}");
            rt.block_on(fill(store, &kind));
            let started = Instant::now();
            let drained = rt.block_on(async {
                if which == "queue" { drain_queue(store, &kind).await } else { drain_floor(store, &kind).await }
            });
            assert_eq!(drained, JOBS);
            started.elapsed().as_nanos() as f64 / JOBS as f64
        };
        // Which goes first alternates, so drift weighs on both alike.
        if round % 2 == 0 {
            queue.push(measure("queue"));
            floor.push(measure("floor"));
        } else {
            floor.push(measure("floor"));
            queue.push(measure("queue"));
        }
        // Completed jobs stay (they are what `jobs.purge` deletes later); clear them so every
        // round starts from the same table.
        rt.block_on(async {
            let mut uow = store.write(deadline()).await.unwrap();
            while uow.purge_finished_jobs(Utc::now() + TimeDelta::days(1), 10_000).await.unwrap() > 0 {}
            uow.commit().await.unwrap();
        });
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (queue, floor) = (median(queue), median(floor));
    record(&format!("jobs_{name}/queue"), queue);
    record(&format!("jobs_{name}/floor"), floor);
    println!(
        "jobs_{name}: queue {:.0} jobs/s, floor {:.0} jobs/s ({:.2}x of the floor)",
        1e9 / queue,
        1e9 / floor,
        floor / queue
    );
}

/// Median enqueue-to-start latency of a runner that polls every `POLL`, woken by NOTIFY.
fn notify_latency(rt: &tokio::runtime::Runtime, store: &PgStore) {
    const POLL: Duration = Duration::from_secs(1);
    const SAMPLES: usize = 21;
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let handler: Arc<dyn JobHandler> = Arc::new(move |_: Lease, _: Deadline, _: CancellationToken| {
        let _ = started_tx.send(Instant::now());
        async { Ok(JobOutcome::Done) }.boxed()
    });
    let kind = KindConfig {
        name: "bench.notify",
        timeout: Duration::from_secs(5),
        concurrency: 1,
        backoff: RetryPolicy::default(),
        lease: None,
    };
    let config = RunnerConfig { poll_interval: POLL, ..RunnerConfig::default() };
    let stop = CancellationToken::new();
    let latencies = rt.block_on(async {
        let runner =
            JobRunner::new(store.clone(), Arc::new(SystemClock), config, vec![Registered { config: kind, handler }]);
        let running = tokio::spawn(runner.run(stop.clone()));
        let mut latencies = Vec::new();
        for _ in 0..SAMPLES {
            let now = Utc::now();
            let job = NewJob {
                id: JobId::new(),
                kind: "bench.notify".to_owned(),
                payload: "{}".to_owned(),
                max_attempts: 3,
                run_at: now - TimeDelta::seconds(1),
                unique_key: None,
            };
            let mut uow = store.write(deadline()).await.unwrap();
            uow.enqueue(&job, now).await.unwrap();
            uow.commit().await.unwrap();
            let committed = Instant::now();
            let started = started_rx.recv().await.unwrap();
            latencies.push(started.saturating_duration_since(committed).as_nanos() as f64);
        }
        stop.cancel();
        running.await.unwrap();
        latencies
    });
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted[sorted.len() / 2];
    record("jobs_postgres/notify_latency_p50", p50);
    record("jobs_postgres/poll_interval", POLL.as_nanos() as f64);
    println!("jobs_postgres: enqueue-to-start p50 {:.1} ms with a {POLL:?} poll", p50 / 1e6);
}

fn record(id: &str, value: f64) {
    common::record(id, value);
    println!("interleaved {id}: {:.1} µs", value / 1000.0);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let generous = |db: &TestDatabase| StoreConfig { statement_timeout: Duration::from_secs(600), ..db.config() };
    let sqlite = TestDatabase::sqlite();
    let store = rt.block_on(SqliteStore::connect(&generous(&sqlite))).unwrap();
    rt.block_on(store.migrate()).unwrap();
    throughput(&rt, "sqlite", &store);
    let postgres = rt.block_on(TestDatabase::postgres());
    let store = rt.block_on(PgStore::connect(&generous(&postgres))).unwrap();
    rt.block_on(store.migrate()).unwrap();
    throughput(&rt, "postgres", &store);
    notify_latency(&rt, &store);
    rt.block_on(store.close());
}
