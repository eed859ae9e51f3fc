//! Operational endpoints: liveness, readiness, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use stride_services::Deadline;
use stride_services::Store;
use utoipa::ToSchema;

use crate::ApiError;
use crate::error::ErrorBody;
use crate::state::AppState;

/// A readiness probe must answer quickly even when the database does not.
const READINESS_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub(crate) struct StatusBody {
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is alive", body = StatusBody)))]
pub(crate) async fn healthz() -> Json<StatusBody> {
    Json(StatusBody { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready to serve", body = StatusBody),
        (status = 503, description = "A dependency is down; the message names it", body = ErrorBody),
    ))]
pub(crate) async fn readyz<S: Store>(State(app): State<AppState<S>>) -> Result<Json<StatusBody>, ApiError> {
    let health = &app.stride.health;
    match health.database_ready(Deadline::after(READINESS_BUDGET)).await {
        Ok(()) => Ok(Json(StatusBody { status: "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                format!("database ({}) is not reachable", health.backend_name()),
            ))
        }
    }
}

/// Prometheus text format; served only by [`metrics_router`](crate::metrics_router), on the
/// operator's own listener, never beside the API the public reaches.
pub(crate) async fn metrics_text<S: Store>(State(app): State<AppState<S>>) -> impl IntoResponse {
    for pool in app.stride.health.pool_stats() {
        let idle = f64::from(pool.idle);
        let in_use = f64::from(pool.size.saturating_sub(pool.idle));
        metrics::gauge!("db_pool_connections", "pool" => pool.pool, "state" => "idle").set(idle);
        metrics::gauge!("db_pool_connections", "pool" => pool.pool, "state" => "in_use").set(in_use);
    }
    let runtime = tokio::runtime::Handle::current().metrics();
    metrics::gauge!("tokio_alive_tasks").set(runtime.num_alive_tasks() as f64);
    metrics::gauge!("tokio_workers").set(runtime.num_workers() as f64);
    app.metrics.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render())
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "This document (OpenAPI 3.1)")))]
pub(crate) async fn openapi_json<S: Store>(State(app): State<AppState<S>>) -> Json<Arc<serde_json::Value>> {
    Json(app.openapi.clone())
}
