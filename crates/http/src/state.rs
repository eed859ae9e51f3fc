//! What every handler shares. Its own module, so extractors and routes both depend on it and
//! not on each other.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use stride_services::Stride;

#[derive(Clone)]
pub struct AppState<S> {
    pub(crate) stride: Stride<S>,
    pub(crate) metrics: PrometheusHandle,
    /// Derived from the same route list as the router, with every rule the server enforces
    /// written in (`openapi::state_the_rules`), once, at start-up.
    pub(crate) openapi: Arc<serde_json::Value>,
    pub(crate) json_body_limit: JsonBodyLimit,
    /// The one peer whose `X-Forwarded-For` is believed (`ClientAddr`).
    pub(crate) trusted_proxy: Option<std::net::IpAddr>,
    pub(crate) uploads: UploadLimits,
    /// How the web app issues its cookies.
    pub(crate) cookies: crate::CookieConfig,
}

/// What a photo upload's body may be; checked from the headers, then as the bytes stream.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_request_bytes: u64,
    pub max_file_bytes: u64,
    pub max_files: usize,
    /// A body that sends nothing for this long is cut off.
    pub stall_timeout: std::time::Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 100 * 1024 * 1024,
            max_file_bytes: 25 * 1024 * 1024,
            max_files: 10,
            stall_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The largest JSON body [`ApiJson`](crate::extract::ApiJson) reads. A limit of the extractor,
/// not of a path prefix, so routes that take other bodies (multipart uploads) set their own.
#[derive(Debug, Clone, Copy)]
pub struct JsonBodyLimit(pub usize);

impl<S> FromRef<AppState<S>> for JsonBodyLimit {
    fn from_ref(state: &AppState<S>) -> Self {
        state.json_body_limit
    }
}
