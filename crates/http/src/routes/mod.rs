//! The route table and the state every handler shares.

mod activities;
mod auth;
mod me;
mod ops;
mod stats;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Request};
use axum::routing::{get, post};
use axum::{Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use stride_services::{Store, Stride};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub(crate) use activities::*;
pub(crate) use auth::*;
pub(crate) use me::*;
pub(crate) use ops::*;
pub(crate) use stats::*;

use crate::{ApiError, HttpConfig, InFlight, middleware as mw};

pub struct AppState<S> {
    pub(crate) stride: Stride<S>,
    pub(crate) metrics: PrometheusHandle,
}

impl<S: Clone> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self { stride: self.stride.clone(), metrics: self.metrics.clone() }
    }
}

/// Every routed (path, method). The OpenAPI test checks each is documented and each answers.
pub const ROUTES: &[(&str, Method)] = &[
    ("/healthz", Method::GET),
    ("/readyz", Method::GET),
    ("/metrics", Method::GET),
    ("/api/v1/openapi.json", Method::GET),
    ("/api/v1/auth/register", Method::POST),
    ("/api/v1/auth/login", Method::POST),
    ("/api/v1/auth/logout", Method::POST),
    ("/api/v1/me", Method::GET),
    ("/api/v1/me", Method::PATCH),
    ("/api/v1/me/stats", Method::GET),
    ("/api/v1/users/{id}/stats", Method::GET),
    ("/api/v1/activities", Method::POST),
    ("/api/v1/activities", Method::GET),
    ("/api/v1/activities/{id}", Method::GET),
    ("/api/v1/activities/{id}", Method::PATCH),
    ("/api/v1/activities/{id}", Method::DELETE),
];

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router<S: Store>(
    stride: Stride<S>,
    config: &HttpConfig,
    metrics: PrometheusHandle,
    in_flight: InFlight,
) -> Router {
    let state = AppState { stride, metrics };
    let api = Router::new()
        .route("/auth/register", post(register::<S>))
        .route("/auth/login", post(login::<S>))
        .route("/auth/logout", post(logout::<S>))
        .route("/me", get(get_me).patch(update_me::<S>))
        .route("/me/stats", get(get_my_stats::<S>))
        .route("/users/{id}/stats", get(get_user_stats::<S>))
        .route("/activities", post(create_activity::<S>).get(list_activities::<S>))
        .route("/activities/{id}", get(get_activity::<S>).patch(update_activity::<S>).delete(delete_activity::<S>))
        .route("/openapi.json", get(openapi_json));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route") })
        .route_layer(middleware::from_fn(mw::record_metrics))
        // Bodies that announce their size are refused from the header alone, before a byte of
        // them is read; chunked bodies are cut off by the extractor's limit as they stream in.
        .layer(DefaultBodyLimit::max(config.json_body_limit))
        .layer(RequestBodyLimitLayer::new(config.json_body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(mw::ensure_error_envelope))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(in_flight, mw::track_in_flight))
                .layer(CatchPanicLayer::new())
                .layer(middleware::from_fn_with_state(config.request_timeout, mw::enforce_deadline)),
        )
        .with_state(state)
}

/// Lets handlers say "this path segment is not an id" as "not found", as the contract asks.
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}
