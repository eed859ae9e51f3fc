//! The job runner on both backends: two runners racing over many jobs (each effect exactly
//! once), per-kind timeouts, backoff, discarding after the last attempt, panics isolated,
//! graceful shutdown giving leases back, and a stale attempt fenced out after a rescue.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::FutureExt;
use stride_concurrency::RetryPolicy;
use stride_domain::{DisplayName, JobId, JobState, Lease, NewJob, TimeZone, User, UserId, Username};
use stride_repository::testing::deadline;
use stride_repository::{JobRepo, Store, UnitOfWork, UserRepo};
use stride_services::jobs::{
    JobHandler, JobOutcome, JobRunner, JobService, KindConfig, Registered, RunReport, RunnerConfig, complete_in,
};
use stride_services::{Deadline, SystemClock};
use tokio_util::sync::CancellationToken;

stride_repository::each_backend!(
    store:
    two_runners_over_many_jobs_apply_each_effect_exactly_once,
    an_attempt_past_its_timeout_is_cancelled_and_recorded,
    failures_back_off_then_discard_after_the_last_attempt,
    a_panicking_handler_is_recorded_as_a_failure,
    shutdown_gives_running_leases_back,
    a_rescued_job_completes_once_and_the_stale_attempt_is_fenced_out,
);

/// PostgreSQL only: SQLite has no notifications, and its runner polls (every test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_enqueue_starts_its_job_long_before_the_next_poll() {
    stride_repository::testing::with_store::<stride_repository::PgStore, _>(
        an_enqueue_starts_its_job_long_before_the_next_poll,
    )
    .await;
}

fn kind(name: &'static str, timeout: Duration, concurrency: usize) -> KindConfig {
    KindConfig {
        name,
        timeout,
        concurrency,
        backoff: RetryPolicy {
            initial_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(600),
            ..RetryPolicy::default()
        },
        lease: None,
    }
}

fn runner_config() -> RunnerConfig {
    RunnerConfig {
        poll_interval: Duration::from_millis(20),
        grace: Duration::from_millis(200),
        statement_budget: Duration::from_secs(10),
    }
}

fn job(kind: &str, payload: String, max_attempts: u32) -> NewJob {
    NewJob {
        id: JobId::new(),
        kind: kind.to_owned(),
        payload,
        max_attempts,
        run_at: Utc::now() - TimeDelta::seconds(1),
        unique_key: None,
    }
}

async fn enqueue_all<S: Store>(store: &S, jobs: &[NewJob]) {
    let mut uow = store.write(deadline()).await.unwrap();
    for job in jobs {
        assert!(uow.enqueue(job, Utc::now()).await.unwrap());
    }
    uow.commit().await.unwrap();
}

/// Waits (bounded) until `done` says the queue reached the state a test waits for.
async fn until<S: Store>(store: &S, what: &str, done: impl Fn(&[(String, JobState, u64)]) -> bool) {
    let jobs = JobService::new(store.clone(), Arc::new(SystemClock));
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts = jobs.counts(deadline()).await.unwrap();
        if done(&counts) {
            return;
        }
        assert!(tokio::time::Instant::now() < give_up, "{what}: never happened; counts {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(counts: &[(String, JobState, u64)], state: JobState) -> u64 {
    counts.iter().filter(|(_, s, _)| *s == state).map(|(_, _, n)| n).sum()
}

fn start<S: Store>(store: &S, kinds: Vec<Registered>) -> (CancellationToken, tokio::task::JoinHandle<RunReport>) {
    let stop = CancellationToken::new();
    let runner = JobRunner::new(store.clone(), Arc::new(SystemClock), runner_config(), kinds);
    (stop.clone(), tokio::spawn(runner.run(stop)))
}

async fn two_runners_over_many_jobs_apply_each_effect_exactly_once<S: Store>(store: S) {
    const JOBS: usize = 1_000;
    // The effect is a database write committed with the completion: a user named after the
    // job. A second application would break the unique username and fail the attempt.
    let handler = |store: S| -> Arc<dyn JobHandler> {
        Arc::new(move |lease: Lease, deadline: Deadline, _lost: CancellationToken| {
            let store = store.clone();
            async move {
                let name = format!("effect_{}", lease.job.payload);
                let username = Username::parse(&name).map_err(|e| e.to_string())?;
                let user = User {
                    id: UserId::new(),
                    display_name: DisplayName::from_username(&username),
                    username,
                    timezone: TimeZone::utc(),
                    created_at: Utc::now(),
                };
                let mut uow = store.write(deadline).await.map_err(|e| e.to_string())?;
                uow.insert_user(&user, "-").await.map_err(|e| e.to_string())?;
                if complete_in(&mut uow, &lease, Utc::now()).await.map_err(|e| e.to_string())? {
                    uow.commit().await.map_err(|e| e.to_string())?;
                    Ok(JobOutcome::Committed)
                } else {
                    Err("lost the lease; the effect is rolled back".to_owned())
                }
            }
            .boxed()
        })
    };
    let jobs: Vec<NewJob> = (0..JOBS).map(|i| job("test.effect", i.to_string(), 3)).collect();
    enqueue_all(&store, &jobs).await;
    let registered = |store: &S| {
        vec![Registered { config: kind("test.effect", Duration::from_secs(30), 4), handler: handler(store.clone()) }]
    };
    let (stop_a, a) = start(&store, registered(&store));
    let (stop_b, b) = start(&store, registered(&store));
    until(&store, "all completed", |c| count(c, JobState::Completed) == JOBS as u64).await;
    stop_a.cancel();
    stop_b.cancel();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.completed + b.completed, JOBS as u64, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed + a.lost_leases + b.lost_leases, 0, "no attempt ran twice: {a:?} {b:?}");
    assert!(a.completed > 0 && b.completed > 0, "both runners took part: {a:?} {b:?}");
    let mut uow = store.read(deadline()).await.unwrap();
    for i in [0, JOBS / 2, JOBS - 1] {
        let name = Username::parse(&format!("effect_{i}")).unwrap();
        assert!(uow.credentials_by_username(&name).await.unwrap().is_some());
    }
}

async fn an_attempt_past_its_timeout_is_cancelled_and_recorded<S: Store>(store: S) {
    let hang: Arc<dyn JobHandler> = Arc::new(|_: Lease, _: Deadline, _: CancellationToken| {
        std::future::pending::<Result<JobOutcome, String>>().boxed()
    });
    let stuck = job("test.hang", "{}".into(), 1);
    enqueue_all(&store, std::slice::from_ref(&stuck)).await;
    let (stop, runner) =
        start(&store, vec![Registered { config: kind("test.hang", Duration::from_millis(100), 1), handler: hang }]);
    until(&store, "discarded", |c| count(c, JobState::Discarded) == 1).await;
    stop.cancel();
    runner.await.unwrap();
    let stored = JobService::new(store.clone(), Arc::new(SystemClock)).job(deadline(), stuck.id).await.unwrap();
    assert!(stored.last_error.unwrap().contains("timed out"), "the reason is kept");
}

async fn failures_back_off_then_discard_after_the_last_attempt<S: Store>(store: S) {
    let fail: Arc<dyn JobHandler> = Arc::new(|_: Lease, _: Deadline, _: CancellationToken| {
        async { Err::<JobOutcome, _>("upstream said no".to_owned()) }.boxed()
    });
    let failing = job("test.fail", "{}".into(), 2);
    enqueue_all(&store, std::slice::from_ref(&failing)).await;
    let (stop, runner) =
        start(&store, vec![Registered { config: kind("test.fail", Duration::from_secs(5), 1), handler: fail }]);
    until(&store, "retryable", |c| count(c, JobState::Retryable) == 1).await;
    stop.cancel();
    runner.await.unwrap();
    let jobs = JobService::new(store.clone(), Arc::new(SystemClock));
    let stored = jobs.job(deadline(), failing.id).await.unwrap();
    // Full jitter under the first cap (60 s): due again within it, never before now.
    let wait = stored.run_at - Utc::now();
    assert!(wait <= TimeDelta::seconds(60) && stored.run_at >= stored.created_at, "{wait:?}");
    assert_eq!(stored.last_error.as_deref(), Some("upstream said no"));
    // Make it due now; the second (last) failure discards it.
    let mut uow = store.write(deadline()).await.unwrap();
    let leases = uow
        .claim("test.fail", stored.run_at + TimeDelta::seconds(1), Utc::now() + TimeDelta::minutes(1), 1)
        .await
        .unwrap();
    assert!(uow.fail(failing.id, leases[0].attempt(), "still no", None, Utc::now()).await.unwrap());
    uow.commit().await.unwrap();
    let stored = jobs.job(deadline(), failing.id).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Discarded, 2));
}

async fn a_panicking_handler_is_recorded_as_a_failure<S: Store>(store: S) {
    let panics: Arc<dyn JobHandler> = Arc::new(|_: Lease, _: Deadline, _: CancellationToken| {
        async {
            if true {
                panic!("the handler has a bug");
            }
            Ok(JobOutcome::Done)
        }
        .boxed()
    });
    // One attempt left: discarded. Attempts left: retried later, like any failure.
    let (doomed, again) = (job("test.panic", "{}".into(), 1), job("test.panic", "{}".into(), 3));
    enqueue_all(&store, &[doomed.clone(), again.clone()]).await;
    let config = kind("test.panic", Duration::from_secs(5), 1);
    let (stop, runner) = start(&store, vec![Registered { config, handler: panics }]);
    until(&store, "both recorded", |c| count(c, JobState::Discarded) == 1 && count(c, JobState::Retryable) == 1).await;
    stop.cancel();
    let report = runner.await.unwrap();
    assert_eq!(report.failed, 2);
    let jobs = JobService::new(store.clone(), Arc::new(SystemClock));
    for id in [doomed.id, again.id] {
        let stored = jobs.job(deadline(), id).await.unwrap();
        assert!(stored.last_error.unwrap().contains("the handler has a bug"));
    }
    assert_eq!(jobs.job(deadline(), again.id).await.unwrap().state, JobState::Retryable);
}

async fn shutdown_gives_running_leases_back<S: Store>(store: S) {
    let started = Arc::new(tokio::sync::Notify::new());
    let signal = started.clone();
    let hang: Arc<dyn JobHandler> = Arc::new(move |_: Lease, _: Deadline, _: CancellationToken| {
        signal.notify_one();
        std::future::pending::<Result<JobOutcome, String>>().boxed()
    });
    let long = job("test.long", "{}".into(), 3);
    enqueue_all(&store, std::slice::from_ref(&long)).await;
    let (stop, runner) =
        start(&store, vec![Registered { config: kind("test.long", Duration::from_secs(600), 1), handler: hang }]);
    started.notified().await;
    stop.cancel();
    let report = runner.await.unwrap();
    assert_eq!(report.released, 1, "{report:?}");
    let stored = JobService::new(store.clone(), Arc::new(SystemClock)).job(deadline(), long.id).await.unwrap();
    assert_eq!(
        (stored.state, stored.attempt, stored.lease_until),
        (JobState::Available, 0, None),
        "another instance takes it at once"
    );
}

async fn a_rescued_job_completes_once_and_the_stale_attempt_is_fenced_out<S: Store>(store: S) {
    let orphan = job("test.rescue", "{}".into(), 3);
    enqueue_all(&store, std::slice::from_ref(&orphan)).await;
    // A worker claims it with a lease that has already run out, then "dies".
    let mut uow = store.write(deadline()).await.unwrap();
    let stale = uow.claim("test.rescue", Utc::now(), Utc::now() - TimeDelta::seconds(1), 1).await.unwrap();
    assert_eq!(stale[0].attempt(), 1);
    uow.commit().await.unwrap();
    let done: Arc<dyn JobHandler> =
        Arc::new(|_: Lease, _: Deadline, _: CancellationToken| async { Ok(JobOutcome::Done) }.boxed());
    let (stop, runner) =
        start(&store, vec![Registered { config: kind("test.rescue", Duration::from_secs(5), 1), handler: done }]);
    until(&store, "completed", |c| count(c, JobState::Completed) == 1).await;
    stop.cancel();
    assert_eq!(runner.await.unwrap().completed, 1);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(!uow.complete(orphan.id, 1, Utc::now()).await.unwrap(), "the stale attempt's completion changes 0 rows");
    assert!(!uow.fail(orphan.id, 1, "late", None, Utc::now()).await.unwrap());
    uow.commit().await.unwrap();
    let stored = JobService::new(store.clone(), Arc::new(SystemClock)).job(deadline(), orphan.id).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Completed, 2));
}

async fn an_enqueue_starts_its_job_long_before_the_next_poll<S: Store>(store: S) {
    assert!(store.job_wakeups().await.unwrap().is_some(), "this engine has notifications");
    let done: Arc<dyn JobHandler> =
        Arc::new(|_: Lease, _: Deadline, _: CancellationToken| async { Ok(JobOutcome::Done) }.boxed());
    let stop = CancellationToken::new();
    // A poll far longer than the test may take: only a notification can start the second job.
    let config = RunnerConfig { poll_interval: Duration::from_secs(120), ..runner_config() };
    let registered = vec![Registered { config: kind("test.notify", Duration::from_secs(5), 1), handler: done }];
    let runner =
        tokio::spawn(JobRunner::new(store.clone(), Arc::new(SystemClock), config, registered).run(stop.clone()));
    // The first job is taken by the runner's first claim; once it is done the loop is idle.
    enqueue_all(&store, &[job("test.notify", "{}".into(), 3)]).await;
    until(&store, "the first job", |c| count(c, JobState::Completed) == 1).await;
    let started = std::time::Instant::now();
    enqueue_all(&store, &[job("test.notify", "{}".into(), 3)]).await;
    until(&store, "the notified job", |c| count(c, JobState::Completed) == 2).await;
    let latency = started.elapsed();
    stop.cancel();
    runner.await.unwrap();
    assert!(latency < Duration::from_secs(10), "started after {latency:?}: the notification did not wake the runner");
    println!("enqueue to completion with LISTEN/NOTIFY: {latency:?} (poll interval 120 s)");
}
