//! Shutdown and deadlines. Both need a request that is provably in flight: we hold SQLite's
//! write lock from a separate connection, so the server's write waits inside the database, and
//! we observe the request through the server's in-flight counter — no sleeps.

mod common;

use std::time::Duration;

use common::{TestApp, error_code, run};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use stride_repository::Backend;

/// Opens a second connection to the test database and takes the write lock.
async fn hold_write_lock(app: &TestApp) -> SqliteConnection {
    let mut conn = SqliteConnection::connect(app.db.url()).await.expect("second connection");
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await.expect("take the write lock");
    conn
}

/// Waits until the server reports `n` requests in flight (bounded, so a bug fails the test).
async fn until_in_flight(app: &TestApp, n: usize) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.in_flight.current() != n {
        assert!(tokio::time::Instant::now() < give_up, "never reached {n} in-flight requests");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_request_completes_during_graceful_shutdown() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let (token, _) = app.register("zoe").await;
    let mut lock = hold_write_lock(&app).await;

    let request =
        app.client.post(app.url("/api/v1/activities")).bearer_auth(&token).json(&run("2026-03-01T08:00:00Z")).send();
    let request = tokio::spawn(request);
    until_in_flight(&app, 1).await;

    let server = app.begin_shutdown();
    // Once shutdown has begun, new connections get no answer (refused, or reset if the kernel
    // had already queued them); until the listener is dropped a request may still slip in.
    let unserved = loop {
        match reqwest::Client::new().get(app.url("/healthz")).send().await {
            Err(e) => break e,
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    assert!(!unserved.is_timeout(), "{unserved}");
    assert!(!server.is_finished(), "the server waits for the in-flight request");

    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    let response = request.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    server.await.unwrap().expect("clean shutdown");

    // The acknowledged write is durable.
    let id = created["id"].as_str().unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM activities WHERE lower(hex(id)) = $1")
        .bind(id.replace('-', ""))
        .fetch_one(&mut lock)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_504_and_changes_nothing() {
    // Long enough for registration on a loaded machine; only the blocked write can reach it.
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.request_timeout_ms = 2_000).await;
    let (token, _) = app.register("yuri").await;
    let mut lock = hold_write_lock(&app).await;

    let response = app.post("/api/v1/activities", Some(&token), run("2026-03-01T08:00:00Z")).await;
    assert_eq!(error_code(response, StatusCode::GATEWAY_TIMEOUT).await, "deadline_exceeded");
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();

    let page: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(page["items"], serde_json::json!([]), "the timed-out write was rolled back");
    // The writer recovers: the next write succeeds.
    let response = app.post("/api/v1/activities", Some(&token), run("2026-03-01T08:00:00Z")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_with_503_naming_the_database_when_it_is_gone() {
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    // Terminate every connection to this test's database and forbid new ones.
    let name = app.db.url().rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&stride_repository::testing::admin_url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert!(body["error"]["message"].as_str().unwrap().contains("postgres"));
    // An API call answers 503 (or 401 never): the dependency is down, not the client wrong.
    let response = app.client.get(app.url("/api/v1/me")).bearer_auth("x").send().await.unwrap();
    assert_eq!(error_code(response, StatusCode::SERVICE_UNAVAILABLE).await, "unavailable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")))
        .execute(&mut admin)
        .await
        .unwrap();
    let recovered = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(recovered.status(), StatusCode::OK, "readiness recovers with the database");
}

stride_repository::each_backend!(backend: expired_sessions_are_purged_while_serving_and_the_purger_stops_with_the_server);

async fn count_sessions(app: &TestApp) -> i64 {
    let sql = "SELECT CAST(count(*) AS BIGINT) FROM sessions";
    match app.db.backend() {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(app.db.url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::postgres::PgConnection::connect(app.db.url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

async fn expired_sessions_are_purged_while_serving_and_the_purger_stops_with_the_server(backend: Backend) {
    let clock = stride_services::ManualClock::new(chrono::Utc::now());
    let app = TestApp::spawn_with_clock_and(backend, clock.clone(), |c| c.purge_interval_secs = 1).await;
    app.register("short_lived").await;
    app.register("also_short_lived").await;
    assert_eq!(count_sessions(&app).await, 2);
    clock.advance(chrono::TimeDelta::days(31));
    // The purger ticks every second; wait for it, bounded, so a purger that never runs fails.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    while count_sessions(&app).await > 0 {
        assert!(tokio::time::Instant::now() < give_up, "expired sessions were never purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (token, _) = app.register("fresh").await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK, "live sessions stay");
    app.shutdown().await.expect("the server, purger included, stops cleanly");
}
