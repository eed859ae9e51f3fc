//! Behaviour of the worker pool, and a stress loop over varied sizes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use stride_concurrency::{Deadline, JobId, Outcome, PoolClosed, WorkerPool};
use tokio::sync::Semaphore;

/// How many times the stress tests repeat; `cargo xtask stress` raises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_job_yields_exactly_one_result() {
    let pool = WorkerPool::new(4, 8, |x: u64| async move { Ok::<_, String>(x * x) });
    let mut submitted = Vec::new();
    let mut results = Vec::new();
    for x in 0..100 {
        // Submit and consume from different places in time without deadlock: consume as we go.
        while pool.counters().queued >= 8 {
            results.push(pool.next_result().await.unwrap());
        }
        submitted.push(pool.submit(x).await.unwrap());
    }
    pool.close();
    while let Some(result) = pool.next_result().await {
        results.push(result);
    }
    assert_eq!(submitted, (0..100).map(JobId).collect::<Vec<_>>());
    let mut seen: Vec<(JobId, Outcome<u64, String>)> = results;
    seen.sort_by_key(|(id, _)| *id);
    assert_eq!(seen, (0..100).map(|x| (JobId(x), Outcome::Ok(x * x))).collect::<Vec<_>>());
    let counters = pool.counters();
    assert_eq!((counters.done, counters.queued, counters.running), (100, 0, 0));
    assert_eq!(pool.submit(1).await, Err(PoolClosed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_becomes_a_result_and_its_worker_keeps_serving() {
    let pool = WorkerPool::new(1, 4, |x: u32| async move {
        if x == 3 {
            panic!("job {x} exploded");
        }
        if x == 5 { Err(format!("job {x} failed")) } else { Ok(x) }
    });
    let mut outcomes = pool.process(0..8).await;
    outcomes.sort_by_key(|(id, _)| *id);
    assert_eq!(outcomes[3].1, Outcome::Panicked("job 3 exploded".to_owned()));
    assert_eq!(outcomes[5].1, Outcome::Err("job 5 failed".to_owned()));
    assert_eq!(outcomes.iter().filter(|(_, o)| o.is_ok()).count(), 6, "the single worker served on after the panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_waits_while_the_queue_is_full() {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let pool = WorkerPool::new(1, 2, move |x: u32| {
        let gate = held.clone();
        async move {
            let _ = gate.acquire().await.unwrap();
            Ok::<_, ()>(x)
        }
    });
    // One running (blocked on the gate) and two queued fill the pool.
    for x in 0..3 {
        pool.submit(x).await.unwrap();
    }
    while pool.counters().running != 1 {
        tokio::task::yield_now().await;
    }
    assert!(pool.submit(3).now_or_never().is_none(), "a full queue pushes back");
    gate.add_permits(1);
    let first = pool.next_result().await.unwrap();
    assert_eq!(first, (JobId(0), Outcome::Ok(0)));
    assert!(pool.submit(3).await.is_ok(), "room again after a job finished");
    gate.add_permits(10);
    pool.close();
    let mut rest = 0;
    while pool.next_result().await.is_some() {
        rest += 1;
    }
    assert_eq!(rest, 3);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_what_is_still_running_or_queued_at_the_deadline() {
    let pool = WorkerPool::new(2, 5, |x: u64| async move {
        tokio::time::sleep(Duration::from_secs(if x == 0 { 1 } else { 3600 })).await;
        Ok::<_, ()>(x)
    });
    for x in 0..6 {
        pool.submit(x).await.unwrap();
    }
    let mut outcomes = pool.shutdown(Deadline::after(Duration::from_secs(10))).await;
    outcomes.sort_by_key(|(id, _)| *id);
    assert_eq!(outcomes.len(), 6, "every accepted job is reported");
    assert_eq!(outcomes[0], (JobId(0), Outcome::Ok(0)), "work finishing before the deadline completes");
    assert!(outcomes[1..].iter().all(|(_, o)| *o == Outcome::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_task_can_submit_and_consume_more_jobs_than_the_queues_hold() {
    let pool = WorkerPool::new(2, 1, |x: u32| async move { Ok::<_, ()>(x + 1) });
    let outcomes = pool.process(0..500).await;
    assert_eq!(outcomes.len(), 500);
    let ids: HashSet<JobId> = outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 500);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_pool_stops_its_workers() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let pool = WorkerPool::new(1, 1, move |_: ()| {
        let flag = flag.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            flag.store(true, Ordering::SeqCst);
            Ok::<_, ()>(())
        }
    });
    pool.submit(()).await.unwrap();
    while pool.counters().running != 1 {
        tokio::task::yield_now().await;
    }
    drop(pool);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(!finished.load(Ordering::SeqCst), "the job was aborted with its pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_every_job_is_reported_once_whatever_the_sizes() {
    for iteration in 0..stride_concurrency::testing::stress_iterations() {
        let workers = (iteration % 7 + 1) as usize;
        let queue = (iteration * 3 % 11 + 1) as usize;
        let jobs = iteration * 37 % 300;
        let executions = Arc::new(AtomicUsize::new(0));
        let counted = executions.clone();
        let pool = WorkerPool::new(workers, queue, move |x: u64| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                for _ in 0..(x % 4) {
                    tokio::task::yield_now().await;
                }
                if x.is_multiple_of(13) { Err(x) } else { Ok(x) }
            }
        });
        let mut outcomes = Vec::new();
        // One task submits and consumes: select! on both, never one then the other.
        let mut x = 0;
        while x < jobs {
            tokio::select! {
                accepted = pool.submit(x) => {
                    accepted.unwrap();
                    x += 1;
                }
                Some(outcome) = pool.next_result() => outcomes.push(outcome),
            }
        }
        let cut_short = iteration % 3 == 0;
        let deadline = Deadline::after(if cut_short { Duration::ZERO } else { Duration::from_secs(30) });
        outcomes.extend(pool.shutdown(deadline).await);
        let accepted = jobs as usize;
        let ids: HashSet<JobId> = outcomes.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), outcomes.len(), "iteration {iteration}: a job was reported twice");
        assert_eq!(outcomes.len(), accepted, "iteration {iteration}: a job was lost");
        assert!(executions.load(Ordering::SeqCst) <= accepted, "iteration {iteration}: a job ran twice");
        if !cut_short {
            assert!(outcomes.iter().all(|(_, o)| !matches!(o, Outcome::Cancelled)), "iteration {iteration}");
        }
    }
}
