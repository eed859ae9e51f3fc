//! The one error type of the HTTP edge and the envelope every non-2xx answer carries.
//!
//! Infrastructure failures are logged with their cause here and reach the client only as a
//! generic message: a client learns *that* the database timed out, never its hostname.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stride_services::ServiceError;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

/// `{"error": {"code": "...", "message": "..."}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case identifier clients can branch on.
    #[schema(example = "invalid_input")]
    pub code: String,
    /// Human-readable text; names the offending field where there is one.
    #[schema(example = "distance_m: must be a finite number from 0 to 10000000")]
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", format!("{field}: {message}"))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn timeout() -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", "the request did not complete in time")
    }

    /// The envelope for a status produced without one (framework rejections, panics).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this method is not allowed on this path"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "expected Content-Type: application/json"),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                return Self::timeout();
            }
            StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "a dependency is unavailable"),
            s if s.is_client_error() => ("bad_request", "the request was not understood"),
            _ => ("internal", "internal server error"),
        };
        // A 408 from anywhere becomes a 504: the client did nothing wrong, we ran out of time.
        Self::new(status, code, message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid { field, message } => ApiError::invalid(field, message),
            ServiceError::Unauthenticated => ApiError::unauthenticated("missing, invalid or expired token"),
            ServiceError::BadCredentials => ApiError::unauthenticated("invalid username or password"),
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            ServiceError::Refused { code, message } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message),
            ServiceError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "too many failed attempts; retry later",
                )
            },
            ServiceError::RateLimited { retry_after, message } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            ServiceError::Busy { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the server is busy; retry shortly")
            },
            ServiceError::Timeout => ApiError::timeout(),
            ServiceError::TooLarge(message) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            ServiceError::QuotaExceeded(message) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message)
            }
            ServiceError::UnsupportedMedia(message) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
            }
            ServiceError::StorageUnavailable(why) => {
                tracing::warn!(cause = %why, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "photo storage is unavailable; nothing was stored; retry later",
                )
            }
            ServiceError::Unavailable(why) => {
                tracing::warn!(cause = %why, "dependency unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a dependency is unavailable; retry later",
                )
            }
            ServiceError::Internal(why) => {
                tracing::error!(cause = %why, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn envelope(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_service_error_has_its_status_and_code() {
        let cases = [
            (ServiceError::Invalid { field: "distance_m", message: "too far".into() }, 422, "invalid_input"),
            (ServiceError::Unauthenticated, 401, "unauthenticated"),
            (ServiceError::BadCredentials, 401, "unauthenticated"),
            (ServiceError::NotFound, 404, "not_found"),
            (ServiceError::Conflict { code: "username_taken", message: "taken".into() }, 409, "username_taken"),
            (ServiceError::Refused { code: "track_owned", message: "from the track".into() }, 422, "track_owned"),
            (ServiceError::Throttled { retry_after: Duration::from_millis(1500) }, 429, "too_many_attempts"),
            (
                ServiceError::RateLimited { retry_after: Duration::from_secs(60), message: "quota".into() },
                429,
                "rate_limited",
            ),
            (ServiceError::Busy { retry_after: Duration::from_secs(1) }, 503, "busy"),
            (ServiceError::Timeout, 504, "deadline_exceeded"),
            (ServiceError::TooLarge("a.jpg: over 25 MiB".into()), 413, "payload_too_large"),
            (ServiceError::QuotaExceeded("5.0 GiB of 5.0 GiB used".into()), 413, "quota_exceeded"),
            (ServiceError::UnsupportedMedia("a.gif: not an image".into()), 415, "unsupported_media_type"),
            (ServiceError::StorageUnavailable("s3 503".into()), 503, "storage_unavailable"),
            (ServiceError::Unavailable("db.internal:5432 refused".into()), 503, "unavailable"),
            (ServiceError::Internal("SELECT exploded".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let (got_status, headers, body) = envelope(ApiError::from(error.clone())).await;
            assert_eq!(got_status.as_u16(), status, "{error:?}");
            assert_eq!(body["error"]["code"], code, "{error:?}");
            assert!(body["error"]["message"].is_string(), "{error:?}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_eq!(headers.contains_key(header::WWW_AUTHENTICATE), status == 401);
        }
    }

    #[tokio::test]
    async fn infrastructure_details_never_reach_the_client() {
        for error in
            [ServiceError::Unavailable("db.internal:5432 refused".into()), ServiceError::Internal("SELECT".into())]
        {
            let (_, _, body) = envelope(error.into()).await;
            let text = body.to_string();
            assert!(!text.contains("db.internal") && !text.contains("SELECT"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_throttled_answer_says_when_to_retry_in_whole_seconds() {
        let (_, headers, _) =
            envelope(ServiceError::Throttled { retry_after: Duration::from_millis(1500) }.into()).await;
        assert_eq!(headers[header::RETRY_AFTER], "2");
        let (_, headers, _) = envelope(ServiceError::Throttled { retry_after: Duration::ZERO }.into()).await;
        assert_eq!(headers[header::RETRY_AFTER], "1", "never 0, which would invite an immediate retry");
    }

    #[test]
    fn a_request_timeout_from_anywhere_is_answered_as_a_gateway_timeout() {
        assert_eq!(ApiError::for_status(StatusCode::REQUEST_TIMEOUT).status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ApiError::for_status(StatusCode::IM_A_TEAPOT).code, "bad_request");
    }
}
