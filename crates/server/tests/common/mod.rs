//! Spawns the real Stride on a random port over a fresh database, and talks to it over HTTP.

#![allow(dead_code)]

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use stride_http::InFlight;
use stride_repository::Backend;
use stride_repository::testing::TestDatabase;

use stride_server::{Application, Config};
use stride_services::{Clock, ManualClock, SystemClock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    /// `http://…` of the metrics listener, when `STRIDE_METRICS_LISTEN` was set.
    pub metrics_base: Option<String>,
    pub client: Client,
    pub db: Arc<TestDatabase>,
    pub in_flight: InFlight,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(backend, tweak, Arc::new(SystemClock)).await
    }

    /// With an injected clock, for tests that pin "now" (streaks).
    pub async fn spawn_with_clock(backend: Backend, clock: ManualClock) -> Self {
        Self::spawn_full(backend, |_| {}, Arc::new(clock)).await
    }

    /// With an injected clock and settings.
    pub async fn spawn_with_clock_and(backend: Backend, clock: ManualClock, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_full(backend, tweak, Arc::new(clock)).await
    }

    async fn spawn_full(backend: Backend, tweak: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> Self {
        let db = Arc::new(TestDatabase::create(backend).await);
        Self::spawn_on(db, tweak, clock).await
    }

    /// Another instance on the same database (several replicas behind one load balancer).
    pub async fn spawn_sharing(db: Arc<TestDatabase>, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(db, tweak, Arc::new(SystemClock)).await
    }

    async fn spawn_on(db: Arc<TestDatabase>, tweak: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_owned(),
            database_url: Some(db.url().to_owned()),
            log: "warn".into(),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Config::default()
        };
        tweak(&mut config);
        let app = Application::build_with_clock(config, clock).await.expect("build app");
        let base = format!("http://{}", app.local_addr());
        let metrics_base = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let in_flight = app.in_flight();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            base,
            metrics_base,
            client: http_client(),
            db,
            in_flight,
            shutdown: Some(tx),
            server: Some(server),
            _data_dir: data_dir,
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// Waits (at most 10 s) until the number of requests being served satisfies `done`.
    pub async fn wait_for_in_flight(&self, done: impl Fn(usize) -> bool) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done(self.in_flight.current()) {
            assert!(std::time::Instant::now() < give_up, "in-flight requests stuck at {}", self.in_flight.current());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// `/metrics`, on its own listener.
    pub async fn metrics(&self) -> String {
        let base = self.metrics_base.as_deref().expect("a metrics listener");
        self.client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request reaches the server")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Registers `username` and returns (token, user object).
    pub async fn register(&self, username: &str) -> (String, Value) {
        let response = self
            .post("/api/v1/auth/register", None, json!({"username": username, "password": "correct horse battery"}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {username}");
        let body: Value = response.json().await.unwrap();
        (body["token"].as_str().unwrap().to_owned(), body["user"].clone())
    }

    /// Registers `username` living in `timezone` and returns the token.
    pub async fn register_in(&self, username: &str, timezone: &str) -> String {
        let body = json!({"username": username, "password": "correct horse battery", "timezone": timezone});
        let response = self.post("/api/v1/auth/register", None, body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {username}");
        response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    }

    pub async fn create_activity(&self, token: &str, body: Value) -> Value {
        let response = self.post("/api/v1/activities", Some(token), body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Triggers graceful shutdown and waits for the server to stop.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.take().expect("not yet shut down").send(());
        self.server.take().expect("running").await?
    }

    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        let _ = self.shutdown.take().expect("not yet shut down").send(());
        self.server.take().expect("running")
    }
}

pub fn run(started_at: &str) -> Value {
    json!({"sport": "run", "started_at": started_at, "duration_s": 1800, "distance_m": 5000.0})
}

/// Asserts the error envelope and returns its code.
pub async fn error_code(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"), "error responses are JSON");
    let body: Value = response.json().await.expect("JSON error body");
    let message = body["error"]["message"].as_str().expect("error.message");
    assert!(!message.is_empty());
    body["error"]["code"].as_str().expect("error.code").to_owned()
}

pub async fn error_message(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["message"].as_str().expect("error.message").to_owned()
}

/// A reqwest client for talking to the test server. The workspace builds reqwest without a
/// crypto provider of its own (the binary's one TLS stack is rustls on ring), so the provider
/// is installed before the first client is built.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    stride_repository::install_ring_provider();
    reqwest::Client::builder()
}

pub fn http_client() -> Client {
    http_client_builder().build().expect("build the test HTTP client")
}

/// Waits, up to 30 s, for a condition that only the server's own background work (its job
/// runner) makes true and that a test can only observe from outside; panics with `what` then.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "still not true after 30 s: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The CSRF token a page's forms carry (`<input type="hidden" name="csrf" value="…">`).
pub fn form_token(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).map(|at| at + marker.len()).expect("a form with a CSRF token");
    html[start..].split('"').next().unwrap().to_owned()
}

/// The real binary (`CARGO_BIN_EXE_stride`), serving on a free port over `db` with `env` on top;
/// killed when dropped.
pub struct StrideProcess {
    pub child: std::process::Child,
    pub base: String,
    _data: tempfile::TempDir,
}

impl StrideProcess {
    pub async fn start(db: &TestDatabase, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
            .env("STRIDE_LISTEN", format!("127.0.0.1:{port}"))
            .env("STRIDE_DATA_DIR", data.path())
            .env("STRIDE_DATABASE_URL", db.url())
            .env("STRIDE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the stride binary");
        let mut process = Self { child, base: format!("http://127.0.0.1:{port}"), _data: data };
        let client = http_client();
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let health = client.get(format!("{}/healthz", process.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            assert!(process.child.try_wait().unwrap().is_none(), "stride exited at start");
            assert!(tokio::time::Instant::now() < give_up, "stride never became healthy");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers `username` on this process and returns its token.
    pub async fn register(&self, username: &str) -> String {
        let body = json!({"username": username, "password": "correct horse battery"});
        let response = http_client().post(self.url("/api/v1/auth/register")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "register {username}");
        let registered: Value = response.json().await.unwrap();
        registered["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for StrideProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `username` in through the login page and returns its session cookie (`name=value`).
pub async fn page_session(client: &reqwest::Client, app: &TestApp, username: &str) -> String {
    let page = client.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = form_token(&page.text().await.unwrap());
    let logged_in = client
        .post(app.url("/login"))
        .header("cookie", &csrf_cookie)
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    let session = logged_in.headers().get_all("set-cookie").iter().find_map(|cookie| {
        let cookie = cookie.to_str().unwrap();
        cookie.starts_with("stride_session=").then(|| cookie.split(';').next().unwrap().to_owned())
    });
    session.expect("a session cookie")
}

/// Points `config` at the S3 test server.
pub fn use_s3(config: &mut Config, s3: &stride_repository::S3TestServer) {
    let s3_config = s3.config();
    config.s3_bucket = Some(s3_config.bucket);
    config.s3_endpoint = s3_config.endpoint;
    config.s3_region = s3_config.region;
    config.s3_path_style = true;
    let (key, secret) = s3_config.static_credentials.unwrap();
    config.s3_access_key_id = Some(key);
    config.s3_secret_access_key = Some(secret);
}

/// Polls the import until `until` holds — something only the server's background work makes
/// true — and returns it; fails, naming its last state, after `within`.
#[allow(dead_code)]
pub async fn import_until(
    app: &TestApp,
    token: &str,
    id: &str,
    within: std::time::Duration,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let give_up = std::time::Instant::now() + within;
    loop {
        let import: Value = app.get(&format!("/api/v1/imports/{id}"), token).await.json().await.unwrap();
        if until(&import) {
            return import;
        }
        assert!(std::time::Instant::now() < give_up, "after {within:?} the import is still {import}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
