//! The HTTP edge of Stride: turns requests into service calls and service results into JSON.
//!
//! Beside the API it serves the web app (`pages`): server-rendered HTML for people, calling the
//! same services, with cookie sessions and CSRF tokens of its own.
//!
//! This crate sits directly above `services` and knows nothing of databases: it parses
//! request bodies into domain values (`TryFrom` on each request DTO), mints one
//! [`Deadline`](stride_services::Deadline) per request that the services carry down to every
//! database statement, maps every failure — its own, the services', and axum's own rejections —
//! into one JSON envelope `{"error": {"code", "message"}}`, and documents every route in an
//! OpenAPI 3.1 document generated from the handlers themselves.
//!
//! Architecture Invariant: `http` depends on `services` and `domain` only; it never names a
//! repository type.

mod dto;
mod edge;
mod error;
mod extract;
mod middleware;
mod openapi;
mod pages;
mod router;
mod routes;
mod state;

use std::time::Duration;

pub use error::ApiError;
pub use middleware::{InFlight, install_metrics_recorder};
pub use openapi::ApiDoc;
pub use pages::{CookieConfig, form_paths};
pub use router::router;
pub use routes::metrics_router;
pub use state::{AppState, JsonBodyLimit, UploadLimits};

/// Knobs of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The whole time a request may take; it becomes the deadline every database call
    /// inherits. A request that overruns it is answered with 504.
    pub request_timeout: Duration,
    /// The largest JSON body accepted; larger bodies are answered with 413.
    pub json_body_limit: usize,
    /// A reverse proxy whose `X-Forwarded-For` names the client (per-client limits).
    pub trusted_proxy: Option<std::net::IpAddr>,
    /// The deadline of a photo upload, instead of `request_timeout`: a phone on a slow link
    /// needs minutes for 100 MiB.
    pub upload_timeout: Duration,
    pub uploads: UploadLimits,
    /// The web app's cookies.
    pub cookies: CookieConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            json_body_limit: 1024 * 1024,
            trusted_proxy: None,
            upload_timeout: Duration::from_secs(120),
            uploads: UploadLimits::default(),
            cookies: CookieConfig::default(),
        }
    }
}
