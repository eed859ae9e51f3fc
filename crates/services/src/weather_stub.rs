//! A local stand-in for the Open-Meteo archive API, for tests only: a small axum server on a
//! loopback port that answers, hangs or fails on demand — the product's tests never call the
//! real service.
//!
//! Its answers are recognisable: the temperature of hour `h` (UTC) is `h + 0.5`, so a test can
//! tell which hour was picked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde_json::json;

/// How the stub answers the next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StubMode {
    Answer = 0,
    /// Never answers (the client's timeout must end the call).
    Hang = 1,
    /// Answers 500.
    Fail = 2,
}

#[derive(Default)]
struct StubState {
    mode: AtomicU8,
    calls: AtomicUsize,
    queries: Mutex<Vec<HashMap<String, String>>>,
}

/// The running stub; stopped when dropped.
pub struct WeatherStub {
    /// The base URL to give as `STRIDE_WEATHER_URL`.
    pub url: String,
    state: Arc<StubState>,
    server: tokio::task::JoinHandle<()>,
}

impl WeatherStub {
    pub async fn start() -> Self {
        let state = Arc::new(StubState::default());
        let app = axum::Router::new().route("/v1/archive", get(archive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, server }
    }

    pub fn set(&self, mode: StubMode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Calls received so far, whatever their answer.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The query parameters of every call, in order.
    pub fn queries(&self) -> Vec<HashMap<String, String>> {
        self.state.queries.lock().expect("no test panics holding it").clone()
    }
}

impl Drop for WeatherStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn archive(State(state): State<Arc<StubState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    state.calls.fetch_add(1, Ordering::SeqCst);
    state.queries.lock().expect("no test panics holding it").push(query.clone());
    match state.mode.load(Ordering::SeqCst) {
        1 => std::future::pending().await,
        2 => return (StatusCode::INTERNAL_SERVER_ERROR, "the stub was told to fail").into_response(),
        _ => {}
    }
    let day = |name: &str| query.get(name).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(from), Some(to)) = (day("start_date"), day("end_date")) else {
        return (StatusCode::BAD_REQUEST, "start_date and end_date are required").into_response();
    };
    let mut time = Vec::new();
    let mut temperature = Vec::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        for hour in 0..24 {
            time.push(format!("{}T{hour:02}:00", day.format("%Y-%m-%d")));
            temperature.push(f64::from(hour) + 0.5);
        }
    }
    let n = time.len();
    axum::Json(json!({
        "latitude": query.get("latitude"),
        "longitude": query.get("longitude"),
        "timezone": "GMT",
        "hourly": {
            "time": time,
            "temperature_2m": temperature,
            "wind_speed_10m": vec![3.25; n],
            "precipitation": vec![0.4; n],
            "weather_code": vec![61; n],
        }
    }))
    .into_response()
}
