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
        match common::http_client().get(app.url("/healthz")).send().await {
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
    let status = recovered.status();
    assert_eq!(status, StatusCode::OK, "readiness recovers with the database: {}", recovered.text().await.unwrap());
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

/// A raw connection to the server, for what an HTTP client library would not do.
async fn raw(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection, bounded so that a server that never closes it
/// fails the test.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_completes_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.header_read_timeout_ms = 300).await;
    let mut stream = raw(&app).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: stride\r\n").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(!answer.contains("200 OK"), "a partial head was served: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_which_nothing_moves_is_closed() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.header_read_timeout_ms = 60_000;
        c.idle_timeout_ms = 300;
    })
    .await;
    let mut stream = raw(&app).await;
    assert_eq!(until_closed(&mut stream).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_waits_until_one_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.max_connections = 1).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: stride\r\n\r\n";
    let mut first = raw(&app).await;
    first.write_all(request).await.unwrap();
    let mut head = [0u8; 12];
    first.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // The first connection is kept alive and holds the only slot: the second is accepted by
    // the kernel but not served.
    let mut second = raw(&app).await;
    second.write_all(request).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut head)).await;
    assert!(waiting.is_err(), "a connection past the cap was served");
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), second.read_exact(&mut head)).await.unwrap().unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "served once the slot was free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_running_after_the_grace_period_are_aborted() {
    let mut app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.shutdown_grace_ms = 300;
        c.request_timeout_ms = 60_000;
    })
    .await;
    let (token, _) = app.register("stuck").await;
    let mut lock = hold_write_lock(&app).await;
    let request =
        app.client.post(app.url("/api/v1/activities")).bearer_auth(&token).json(&run("2026-03-01T08:00:00Z")).send();
    let request = tokio::spawn(request);
    until_in_flight(&app, 1).await;

    // The write waits on a lock nobody releases: only aborting it lets the server stop.
    let stopped = tokio::time::timeout(Duration::from_secs(15), app.begin_shutdown()).await;
    assert!(stopped.is_ok(), "the server waited past its grace period");
    stopped.unwrap().unwrap().unwrap();
    assert!(request.await.unwrap().is_err(), "the aborted request's connection was closed");
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM activities").fetch_one(&mut lock).await.unwrap();
    assert_eq!(count, 0, "the aborted write left nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_only() {
    // Without STRIDE_METRICS_LISTEN there are no metrics at all on the public listener.
    let public_only = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_listen = None).await;
    let on_api = public_only.client.get(public_only.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    assert!(public_only.metrics_base.is_none());

    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let (token, _) = app.register("watched").await;
    app.get("/api/v1/me", &token).await;
    let on_api = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND, "never beside the API");
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/metrics"].is_null(), "nor in the API's document");
    let metrics = app.metrics().await;
    assert!(metrics.contains("http_requests_total{method=\"GET\",route=\"/api/v1/me\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_that_cannot_be_bound_stops_the_start_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let config = stride_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_owned(),
        metrics_listen: Some(taken.local_addr().unwrap()),
        ..stride_server::Config::default()
    };
    let Err(error) = stride_server::Application::build(config).await else { panic!("started on a taken address") };
    let chain = format!("{error:#}");
    assert!(chain.contains("STRIDE_METRICS_LISTEN"), "{chain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_have_host_names_and_come_with_hsts_and_a_laptop_gets_neither() {
    let laptop = TestApp::spawn(Backend::Sqlite).await;
    let page = laptop.client.get(laptop.url("/login")).send().await.unwrap();
    assert!(page.headers().get("strict-transport-security").is_none(), "no HSTS on a loopback listener");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("stride_csrf=") && !cookie.contains("Secure"), "{cookie}");

    let behind_tls = TestApp::spawn_with(Backend::Sqlite, |c| c.cookie_secure = Some(true)).await;
    let page = behind_tls.client.get(behind_tls.url("/login")).send().await.unwrap();
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-stride_csrf=") && cookie.contains("; Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "a __Host- cookie has no Domain: {cookie}");
    let api = behind_tls.client.get(behind_tls.url("/healthz")).send().await.unwrap();
    assert_eq!(api.headers()["strict-transport-security"], "max-age=31536000", "every response");
}
