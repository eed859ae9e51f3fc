//! The whole router: the JSON API (`routes`) and the web app (`pages`) side by side, with the
//! layers every request passes. The only module that names both edges.

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::{Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use stride_services::{Store, Stride};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::routes::{API_PREFIX, served_document};
use crate::state::{AppState, JsonBodyLimit};
use crate::{ApiDoc, HttpConfig, InFlight, middleware as mw, pages, routes};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const HSTS: &str = "max-age=31536000";

/// Every route of one Stride: each edge's routes carry their own deadline and panic layers
/// (`edge::guarded`), so a page that times out or panics answers with an HTML page and an API
/// call with the JSON envelope; the layers here are the ones both share.
pub fn router<S: Store>(
    stride: Stride<S>,
    config: &HttpConfig,
    metrics: PrometheusHandle,
    in_flight: InFlight,
) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::operational(config))
        .nest(API_PREFIX, routes::api(config))
        .split_for_parts();
    // The web app: its own pages beside the API, and its HTML 404 for any other path.
    let router = router.merge(pages::routes::<S>(config)).fallback(pages::not_found);
    let state = AppState {
        stride,
        metrics,
        openapi: Arc::new(served_document(&openapi)),
        json_body_limit: JsonBodyLimit(config.json_body_limit),
        trusted_proxy: config.trusted_proxy,
        uploads: config.uploads,
        cookies: config.cookies,
    };
    // Browsers that once saw HSTS refuse plain HTTP to this host for a year, so the Secure
    // cookies can never be sent in the clear. Only with Secure cookies: a laptop's plain-HTTP
    // server must not pin localhost to HTTPS.
    let hsts = config.cookies.secure.then(|| {
        SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS))
    });
    router
        .route_layer(middleware::from_fn(mw::record_metrics))
        .layer(tower::util::option_layer(hsts))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(in_flight, mw::track_in_flight)),
        )
        .with_state(state)
}
