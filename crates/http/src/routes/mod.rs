//! The JSON API's route table. Every route is written once, in [`api`]: the axum router and
//! the OpenAPI document are both derived from that one list, so nothing can be routed without
//! being documented or documented without being routed.

mod activities;
mod auth;
mod imports;
mod me;
mod ops;
mod photos;
mod records;
mod social;
mod stats;
mod tracks;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware;
use axum::routing::MethodRouter;
use metrics_exporter_prometheus::PrometheusHandle;
use stride_services::{Store, Stride};
use utoipa_axum::PathItemExt;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

pub(crate) use activities::*;
pub(crate) use auth::*;
pub(crate) use imports::*;
pub(crate) use me::*;
pub(crate) use ops::*;
pub(crate) use photos::*;
pub(crate) use records::*;
pub(crate) use social::*;
pub(crate) use stats::*;
pub(crate) use tracks::*;

use crate::edge::guarded_api;
use crate::state::{AppState, JsonBodyLimit, UploadLimits};
use crate::{ApiError, HttpConfig, middleware as mw};

/// The JSON API's prefix; its paths are written in full in each handler's annotation.
pub(crate) const API_PREFIX: &str = "/api/v1";

/// One documented route: the handler, served at the path and methods its `#[utoipa::path]`
/// names, with the schemas it references. What `utoipa_axum::routes!` does, for handlers that
/// are generic over the store (the macro cannot take a turbofish). Paths under [`API_PREFIX`]
/// are made relative, because the API router is nested there.
fn documented<Doc, H, T, St>(handler: H) -> UtoipaMethodRouter<St>
where
    Doc: utoipa::Path + utoipa::__dev::SchemaReferences,
    H: axum::handler::Handler<T, St>,
    T: 'static,
    St: Clone + Send + Sync + 'static,
{
    let full_path = Doc::path();
    let path = full_path.strip_prefix(API_PREFIX).unwrap_or(&full_path).to_owned();
    let methods = Doc::methods();
    let method_router = methods
        .iter()
        .fold(MethodRouter::new(), |router, method| router.on(method.to_method_filter(), handler.clone()));
    let mut schemas = Vec::new();
    Doc::schemas(&mut schemas);
    let mut paths = utoipa::openapi::path::Paths::new();
    paths.add_path_operation(path, methods, Doc::operation());
    (schemas, paths, method_router)
}

/// `documented!(handler::<S>)`: the handler with the documentation its annotation generated.
macro_rules! documented {
    ($handler:ident $(::<$store:ident>)?) => {
        utoipa_axum::paste! { documented::<[<__path_ $handler>], _, _, _>($handler $(::<$store>)?) }
    };
}

/// The JSON API, nested at [`API_PREFIX`]: every route under the request deadline, photo
/// uploads under their own (`STRIDE_UPLOAD_TIMEOUT_MS`); unknown paths get the envelope's
/// 404, wrong methods its 405.
pub(crate) fn api<S: Store>(config: &HttpConfig) -> OpenApiRouter<AppState<S>> {
    let uploads = OpenApiRouter::new().routes(documented!(upload_photos::<S>));
    let imports = OpenApiRouter::new().routes(documented!(create_import::<S>));
    guarded_api(api_routes::<S>(), config.request_timeout)
        .merge(guarded_api(uploads, config.upload_timeout))
        .merge(guarded_api(imports, crate::edge::BODY_WITHOUT_DEADLINE))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(middleware::from_fn(mw::ensure_error_envelope))
}

fn api_routes<S: Store>() -> OpenApiRouter<AppState<S>> {
    OpenApiRouter::new()
        .routes(documented!(register::<S>))
        .routes(documented!(login::<S>))
        .routes(documented!(logout::<S>))
        .routes(documented!(get_me))
        .routes(documented!(update_me::<S>))
        .routes(documented!(get_my_stats::<S>))
        .routes(documented!(get_my_weekly_stats::<S>))
        .routes(documented!(get_user_stats::<S>))
        .routes(documented!(get_my_periods::<S>))
        .routes(documented!(get_my_records::<S>))
        .routes(documented!(get_user_records::<S>))
        .routes(documented!(get_best_efforts::<S>))
        .routes(documented!(create_activity::<S>))
        .routes(documented!(list_activities::<S>))
        .routes(documented!(get_activity::<S>))
        .routes(documented!(update_activity::<S>))
        .routes(documented!(delete_activity::<S>))
        .routes(documented!(list_photos::<S>))
        .routes(documented!(get_photo_display::<S>))
        .routes(documented!(get_photo_thumb::<S>))
        .routes(documented!(get_photo_original::<S>))
        .routes(documented!(delete_photo::<S>))
        .routes(documented!(list_user_activities::<S>))
        .routes(documented!(get_profile_by_username::<S>))
        .routes(documented!(send_friend_request::<S>))
        .routes(documented!(list_friend_requests::<S>))
        .routes(documented!(accept_friend_request::<S>))
        .routes(documented!(decline_friend_request::<S>))
        .routes(documented!(cancel_friend_request::<S>))
        .routes(documented!(list_friends::<S>))
        .routes(documented!(delete_friend::<S>))
        .routes(documented!(block_user::<S>))
        .routes(documented!(unblock_user::<S>))
        .routes(documented!(list_blocks::<S>))
        .routes(documented!(get_feed::<S>))
        .routes(documented!(list_imports::<S>))
        .routes(documented!(get_import::<S>))
        .routes(documented!(list_import_items::<S>))
        .routes(documented!(cancel_import::<S>))
        .routes(documented!(get_streams::<S>))
        .routes(documented!(export_gpx::<S>))
        .routes(documented!(get_original_file::<S>))
        .routes(documented!(create_privacy_zone::<S>))
        .routes(documented!(list_privacy_zones::<S>))
        .routes(documented!(delete_privacy_zone::<S>))
        .routes(documented!(openapi_json::<S>))
}

/// The probes, at the root, for the tools that expect them there. (`/metrics` is not here: it
/// tells the public the server's load and inner names, so it has a listener of its own.)
pub(crate) fn operational<S: Store>(config: &HttpConfig) -> OpenApiRouter<AppState<S>> {
    let probes = OpenApiRouter::new().routes(documented!(healthz)).routes(documented!(readyz::<S>));
    guarded_api(probes, config.request_timeout)
}

/// `/metrics` alone, for `STRIDE_METRICS_LISTEN`: an operator can keep metrics off the
/// listener the public reaches.
pub fn metrics_router<S: Store>(stride: Stride<S>, metrics: PrometheusHandle) -> axum::Router {
    let state = AppState {
        stride,
        metrics,
        openapi: Arc::new(serde_json::Value::Null),
        json_body_limit: JsonBodyLimit(0),
        trusted_proxy: None,
        uploads: UploadLimits::default(),
        cookies: crate::CookieConfig::default(),
    };
    axum::Router::new().route("/metrics", axum::routing::get(metrics_text::<S>)).with_state(state)
}

pub(crate) fn served_document(openapi: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi).unwrap_or_default();
    crate::openapi::state_the_rules(&mut doc);
    doc
}
