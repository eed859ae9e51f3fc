//! Behaviour of the pipeline, and a stress loop with injected failures.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use stride_concurrency::{Outcome, Pipeline, PipelineClosed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_flow_through_every_stage_and_each_yields_one_outcome() {
    let pipeline = Pipeline::<u32, u32, String>::builder(2)
        .stage("double", 3, |x: u32| async move { Ok(x * 2) })
        .stage("describe", 2, |x: u32| async move { Ok(format!("<{x}>")) })
        .build();
    let mut outcomes = pipeline.run(0..50).await;
    outcomes.sort_by_key(|(seq, _)| *seq);
    let expected: Vec<_> = (0..50u64).map(|i| (i, Outcome::Ok(format!("<{}>", i * 2)))).collect();
    assert_eq!(outcomes, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driven_stream_yields_one_outcome_per_item_as_it_comes() {
    let pipeline = Pipeline::<u32, u32, String>::builder(1)
        .stage("double", 2, |x: u32| async move { Ok(x * 2) })
        .stage("check", 2, |x: u32| async move { if x == 40 { Err(format!("no {x}")) } else { Ok(x) } })
        .build();
    // Pages of ten, as a database would hand them out, read only as intake needs them.
    let read = Arc::new(AtomicUsize::new(0));
    let pages = read.clone();
    let items = futures::stream::iter(0..10u32)
        .then(move |page| {
            let pages = pages.clone();
            async move {
                pages.fetch_add(1, Ordering::SeqCst);
                futures::stream::iter(page * 10..page * 10 + 10)
            }
        })
        .flatten();
    let mut outcomes = Vec::new();
    pipeline.drive(items, |seq, outcome| outcomes.push((seq, outcome))).await;
    outcomes.sort_by_key(|(seq, _)| *seq);
    let accepted = outcomes.len() as u64;
    assert_eq!(outcomes.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (0..accepted).collect::<Vec<_>>());
    assert_eq!(outcomes[20], (20, Outcome::Err("no 40".to_owned())), "the first failure, reported once");
    // Items before the failure are done, or cancelled by it while they were in flight.
    assert!(outcomes[..20].iter().all(|(seq, o)| *o == Outcome::Cancelled || *o == Outcome::Ok(*seq as u32 * 2)));
    assert!(outcomes[..20].iter().filter(|(_, o)| o.is_ok()).count() >= 10, "{outcomes:?}");
    assert!(accepted < 100 && read.load(Ordering::SeqCst) < 10, "intake and reading stopped at the failure");

    let all = Pipeline::<u32, u32, String>::builder(1).stage("id", 1, |x: u32| async move { Ok(x) }).build();
    let mut count = 0;
    all.drive(futures::stream::iter(0..25u32), |_, outcome| count += usize::from(outcome.is_ok())).await;
    assert_eq!(count, 25, "a stream that ends drains whole");
}

#[tokio::test(start_paused = true)]
async fn each_stage_runs_at_most_its_concurrency() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (now, max) = (in_flight.clone(), peak.clone());
    let pipeline = Pipeline::<u32, u32, ()>::builder(8)
        .stage("slow", 3, move |x: u32| {
            let (now, max) = (now.clone(), max.clone());
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(x)
            }
        })
        .build();
    assert_eq!(pipeline.run(0..30).await.len(), 30);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_first_error_cancels_the_rest_and_every_item_is_still_reported_once() {
    let runs: Arc<Mutex<HashMap<(&'static str, u32), usize>>> = Arc::default();
    let (a, b) = (runs.clone(), runs.clone());
    let pipeline = Pipeline::<u32, u32, String>::builder(2)
        .stage("parse", 2, move |x: u32| {
            let runs = a.clone();
            async move {
                *runs.lock().entry(("parse", x)).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(x)
            }
        })
        .stage("store", 2, move |x: u32| {
            let runs = b.clone();
            async move {
                *runs.lock().entry(("store", x)).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if x == 4 { Err(format!("cannot store {x}")) } else { Ok(x) }
            }
        })
        .build();
    let outcomes = pipeline.run(0..40).await;
    let mut seqs: Vec<u64> = outcomes.iter().map(|(seq, _)| *seq).collect();
    seqs.sort();
    let accepted = seqs.len() as u64;
    assert_eq!(seqs, (0..accepted).collect::<Vec<_>>(), "each accepted item exactly once");
    assert!(accepted < 40, "intake stopped after the failure");
    let errors: Vec<_> = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Err(_))).collect();
    assert_eq!(errors, vec![&(4, Outcome::Err("cannot store 4".to_owned()))]);
    assert!(outcomes.iter().any(|(_, o)| *o == Outcome::Cancelled));
    assert!(runs.lock().values().all(|&n| n == 1), "no item processed twice by a stage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_stage_fails_the_pipeline_with_its_name() {
    let pipeline = Pipeline::<u32, u32, ()>::builder(1)
        .stage("explode", 1, |x: u32| async move {
            if x == 0 {
                panic!("bad pixel");
            }
            Ok(x)
        })
        .build();
    let outcomes = pipeline.run([0]).await;
    assert_eq!(outcomes, vec![(0, Outcome::Panicked("stage explode: bad pixel".to_owned()))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_accepted_after_cancel_or_close() {
    let mut pipeline = Pipeline::<u32, u32, ()>::builder(4).stage("id", 1, |x: u32| async move { Ok(x) }).build();
    assert_eq!(pipeline.submit(1).await, Ok(0));
    pipeline.cancel();
    assert_eq!(pipeline.submit(2).await, Err(PipelineClosed));
    let mut reported = Vec::new();
    pipeline.close();
    while let Some(outcome) = pipeline.next().await {
        reported.push(outcome);
    }
    assert_eq!(reported.len(), 1, "the accepted item is reported (done or cancelled)");
    pipeline.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_exactly_one_outcome_per_item_with_random_failures() {
    for iteration in 0..stride_concurrency::testing::stress_iterations() {
        let capacity = (iteration % 4 + 1) as usize;
        let concurrency = (iteration * 7 % 5 + 1) as usize;
        let items = iteration * 13 % 120;
        let fail_at = if iteration % 2 == 0 { Some(iteration * 5 % (items.max(1))) } else { None };
        let executions = Arc::new(AtomicUsize::new(0));
        let (e1, e2) = (executions.clone(), executions.clone());
        let pipeline = Pipeline::<u64, u64, u64>::builder(capacity)
            .stage("a", concurrency, move |x: u64| {
                let e = e1.clone();
                async move {
                    e.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(x)
                }
            })
            .stage("b", concurrency.div_ceil(2), move |x: u64| {
                let e = e2.clone();
                async move {
                    e.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..(x % 3) {
                        tokio::task::yield_now().await;
                    }
                    if Some(x) == fail_at { Err(x) } else { Ok(x + 1) }
                }
            })
            .build();
        let outcomes = pipeline.run(0..items).await;
        let mut seqs: Vec<u64> = outcomes.iter().map(|(s, _)| *s).collect();
        seqs.sort();
        let n = seqs.len() as u64;
        assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "iteration {iteration}: lost or duplicated outcome");
        assert!(executions.load(Ordering::SeqCst) <= 2 * n as usize, "iteration {iteration}: reprocessed");
        for (seq, outcome) in &outcomes {
            match outcome {
                Outcome::Ok(v) => assert_eq!(*v, seq + 1, "iteration {iteration}"),
                Outcome::Err(v) => assert_eq!(Some(*v), fail_at, "iteration {iteration}"),
                Outcome::Cancelled => assert!(fail_at.is_some(), "iteration {iteration}: cancelled without a failure"),
                Outcome::Panicked(m) => panic!("iteration {iteration}: {m}"),
            }
        }
        if fail_at.is_none() {
            assert_eq!(n, items, "iteration {iteration}: every item accepted without failures");
        }
    }
}
