//! Cross-cutting request handling: requests in flight, metrics, and the guarantee that every
//! error response of the API carries the JSON envelope. (Deadlines are per edge: `edge::guard`.)

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ApiError;

/// How many requests are being served right now; shared with the server so that shutdown (and
/// its test) can observe in-flight work.
#[derive(Debug, Clone, Default)]
pub struct InFlight(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    pub fn current(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Decrements on drop, so a cancelled or panicking request is uncounted too.
struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let now = self.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
        metrics::gauge!("http_requests_in_flight").set(now as f64);
    }
}

pub(crate) async fn track_in_flight(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    let now = in_flight.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    metrics::gauge!("http_requests_in_flight").set(now as f64);
    let _guard = InFlightGuard(in_flight);
    next.run(req).await
}

/// Counts requests and times them per matched route, method and status. Every label comes
/// from a closed set, so no client can create series: routes are the router's patterns (one
/// `unmatched` label for the rest), and a method we do not know is labelled `other` (HTTP lets
/// a client invent any token as a method).
pub(crate) async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method.to_owned()), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The outermost layer: whatever produced an error status without our envelope (axum's 405,
/// a body-limit rejection, a caught panic) gets it here, keeping headers such as `Allow`.
pub(crate) async fn ensure_error_envelope(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_error || is_json {
        return response;
    }
    let mut enveloped = ApiError::for_status(status).into_response();
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            enveloped.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    enveloped
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle; later calls (a
/// second app in the same test process) share it.
pub fn install_metrics_recorder() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            const LATENCY_BUCKETS: &[f64] =
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be incomplete");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes("X".repeat(50_000).as_bytes()).unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
