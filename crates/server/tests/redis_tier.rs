//! Two Stride instances sharing PostgreSQL and a Redis cache tier: a write on one is seen by the
//! other at once, and a Redis that dies and comes back mid-run never costs a client an error.
//! The Redis server is private to this test (its own port and directory), never the shared one.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestApp, run};
use reqwest::StatusCode;
use serde_json::Value;
use stride_repository::testing::TestDatabase;

struct PrivateRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, dir: tempfile::tempdir().unwrap(), child: None };
        redis.launch();
        redis
    }

    /// Starts redis-server and returns once it logs that it accepts connections.
    fn launch(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        let stdout = child.stdout.take().unwrap();
        let give_up = Instant::now() + Duration::from_secs(20);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            assert!(Instant::now() < give_up, "redis-server did not start");
            match lines.next() {
                Some(Ok(line)) if line.contains("Ready to accept connections") => break,
                Some(_) => {}
                None => panic!("redis-server exited during start-up"),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Freezes the server for `seconds` (it accepts connections but answers nothing).
    fn freeze(&self, seconds: u32) -> std::thread::JoinHandle<()> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        std::thread::spawn(move || {
            let _ = redis::cmd("DEBUG").arg("SLEEP").arg(seconds).query::<()>(&mut connection);
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn keys(&self) -> usize {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("DBSIZE").query::<usize>(&mut connection).unwrap()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn total(app: &TestApp, token: &str) -> u64 {
    let response = app.get("/api/v1/me/stats", token).await;
    assert_eq!(response.status(), StatusCode::OK, "stats never fail because of the cache tier");
    response.json::<Value>().await.unwrap()["total_activities"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree_through_redis_outages() {
    let mut redis = PrivateRedis::start();
    let db = Arc::new(TestDatabase::postgres().await);
    let url = redis.url();
    // A Redis timeout generous enough that, while Redis is up, results reliably reach it even
    // on a loaded machine; the frozen-Redis step below still runs into it.
    let with_redis = |c: &mut stride_server::Config| {
        c.redis_url = Some(url.clone());
        c.redis_timeout_ms = 1_000;
    };
    let a = TestApp::spawn_sharing(db.clone(), with_redis).await;
    let b = TestApp::spawn_sharing(db.clone(), with_redis).await;

    let (token, _) = a.register("two_instances").await;
    a.create_activity(&token, run("2026-03-01T08:00:00Z")).await;
    assert_eq!(total(&b, &token).await, 1);
    assert!(redis.keys() >= 1, "the computation was shared through Redis");
    assert_eq!(total(&a, &token).await, 1);

    // A write acknowledged by one instance is visible on the other's very next read.
    b.create_activity(&token, run("2026-03-02T08:00:00Z")).await;
    assert_eq!(total(&a, &token).await, 2);
    assert_eq!(total(&b, &token).await, 2);

    // Redis dies: both keep answering, from the database.
    redis.stop();
    assert_eq!(total(&a, &token).await, 2);
    a.create_activity(&token, run("2026-03-03T08:00:00Z")).await;
    assert_eq!(total(&b, &token).await, 3);
    assert_eq!(total(&a, &token).await, 3);

    // Redis comes back (empty): the tier reconnects by itself and is used again.
    redis.launch();
    b.create_activity(&token, run("2026-03-04T08:00:00Z")).await;
    assert_eq!(total(&a, &token).await, 4);
    assert_eq!(total(&b, &token).await, 4);
    assert!(redis.keys() >= 1, "the recovered tier stores results again");

    // Redis hangs: calls time out and the database answers; nobody sees an error.
    let frozen = redis.freeze(3);
    a.create_activity(&token, run("2026-03-05T08:00:00Z")).await;
    assert_eq!(total(&b, &token).await, 5);
    assert_eq!(total(&a, &token).await, 5);
    frozen.join().unwrap();
    let metrics = a.metrics().await;
    assert!(metrics.contains("cache_remote_errors_total"), "the outage was counted");
}

async fn rate_limit_rows(db: &TestDatabase) -> i64 {
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let rows = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM rate_limits").fetch_one(&pool).await.unwrap();
    pool.close().await;
    rows
}

async fn login(app: &TestApp, username: &str, password: &str) -> StatusCode {
    let body = serde_json::json!({"username": username, "password": password});
    app.post("/api/v1/auth/login", None, body).await.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_live_in_redis_and_the_database_takes_over_while_it_is_down() {
    let mut redis = PrivateRedis::start();
    let db = Arc::new(TestDatabase::postgres().await);
    let url = redis.url();
    let with_redis = |c: &mut stride_server::Config| {
        c.redis_url = Some(url.clone());
        c.redis_timeout_ms = 500;
    };
    let a = TestApp::spawn_sharing(db.clone(), with_redis).await;
    let b = TestApp::spawn_sharing(db.clone(), with_redis).await;
    a.register("victim").await;
    b.register("other").await;
    for attempt in 0..5 {
        let replica = if attempt % 2 == 0 { &a } else { &b };
        assert_eq!(login(replica, "victim", "a guess").await, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    assert_eq!(login(&b, "victim", "correct horse battery").await, StatusCode::TOO_MANY_REQUESTS);
    assert!(redis.keys() >= 4, "the buckets are in Redis: {} keys", redis.keys());
    assert_eq!(rate_limit_rows(&db).await, 0, "and not in the database");

    // Redis gone: the database decides, and the limit still holds across the two.
    redis.stop();
    for attempt in 0..5 {
        let replica = if attempt % 2 == 0 { &b } else { &a };
        assert_eq!(login(replica, "other", "a guess").await, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    assert_eq!(login(&a, "other", "correct horse battery").await, StatusCode::TOO_MANY_REQUESTS);
    assert!(rate_limit_rows(&db).await > 0, "the database kept them");
}
