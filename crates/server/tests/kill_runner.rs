//! `kill -9` of a `stride` process in the middle of a job: the job stays `running` until its
//! lease expires, another instance then rescues it (attempt 2) and completes it once, and the
//! dead attempt's fence no longer matches — its completion or heartbeat would change 0 rows.
//!
//! The job is a real `weather.enrich`, held mid-call by a stub API that hangs; the killed
//! process is the real binary (`CARGO_BIN_EXE_stride`), started on the test's database.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{StrideProcess, TestApp, run};
use serde_json::{Value, json};
use stride_domain::JobState;
use stride_repository::testing::{TestDatabase, deadline};
use stride_repository::{Backend, JobRepo, PgStore, RESCUE_NOTE, SqliteStore, Store, UnitOfWork};
use stride_services::jobs::JobService;
use stride_services::weather_stub::{StubMode, WeatherStub};
use stride_services::{SystemClock, WEATHER_KIND};

stride_repository::each_backend!(backend: a_runner_killed_mid_job_is_rescued_after_its_lease_and_completes_once);

async fn a_runner_killed_mid_job_is_rescued_after_its_lease_and_completes_once(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    match backend {
        Backend::Sqlite => scenario::<SqliteStore>(db).await,
        Backend::Postgres => scenario::<PgStore>(db).await,
    }
}

async fn scenario<S: Store>(db: Arc<TestDatabase>) {
    let stub = WeatherStub::start().await;
    stub.set(StubMode::Hang);
    let weather = [("STRIDE_WEATHER_URL", stub.url.as_str()), ("STRIDE_WEATHER_TIMEOUT_MS", "1000")];
    let mut doomed = StrideProcess::start(&db, &weather).await;
    let client = common::http_client();
    let token = doomed.register("doomed_runner").await;
    let mut body = run("2026-03-01T07:20:00+01:00");
    body["start_latlng"] = json!([48.8566, 2.3322]);
    let created: Value = client
        .post(format!("{}/api/v1/activities", doomed.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["weather_status"], "pending", "{created}");

    // The job is mid-call (the stub holds it) when the process dies.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    while stub.calls() == 0 {
        assert!(tokio::time::Instant::now() < give_up, "the job never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.child.kill().expect("kill -9");
    doomed.child.wait().unwrap();

    let store: S = db.store().await;
    let jobs = JobService::new(store.clone(), Arc::new(SystemClock));
    let running = jobs.list(deadline(), Some(JobState::Running), Some(WEATHER_KIND), 10).await.unwrap();
    assert_eq!(running.len(), 1, "the dead attempt still holds its lease");
    let (job_id, lease_until) = (running[0].id, running[0].lease_until.unwrap());
    assert_eq!(running[0].attempt, 1);

    // Another instance rescues it once the lease has expired, and completes it.
    stub.set(StubMode::Answer);
    let rescuer = TestApp::spawn_sharing(db.clone(), |config| {
        config.weather_url = Some(stub.url.clone());
        config.weather_timeout_ms = 1000;
    })
    .await;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
    let job = loop {
        let job = jobs.job(deadline(), job_id).await.unwrap();
        if job.state == JobState::Completed {
            break job;
        }
        assert!(tokio::time::Instant::now() < give_up, "never rescued: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.attempt, 2, "rescued as the second attempt");
    assert!(job.last_error.as_deref().is_some_and(|e| e.contains(RESCUE_NOTE)), "{job:?}");
    assert!(job.finished_at.unwrap() >= lease_until, "not before the dead attempt's lease ran out");
    let activity: Value = rescuer
        .get(&format!("/api/v1/activities/{}", created["id"].as_str().unwrap()), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (activity["weather_status"].as_str(), activity["weather"]["source"].as_str()),
        (Some("done"), Some("api"))
    );
    assert_eq!(stub.calls(), 2, "one call per attempt");

    // The dead attempt's fence matches nothing any more.
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(!uow.complete(job_id, 1, Utc::now()).await.unwrap(), "a stale completion changes 0 rows");
    assert!(!uow.heartbeat(job_id, 1, Utc::now() + chrono::TimeDelta::minutes(1)).await.unwrap());
    assert!(!uow.fail(job_id, 1, "stale", None, Utc::now()).await.unwrap());
    uow.rollback().await.unwrap();
    rescuer.shutdown().await.unwrap();
    store.close().await;
}
