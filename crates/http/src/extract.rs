//! Extractors that reject in the house envelope with the statuses of the API contract:
//! malformed JSON 400, well-formed but invalid 422, wrong content type 415, too large 413,
//! bad query 422, missing or bad token 401.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use stride_services::Deadline;
use stride_services::{Caller, IdempotencyKey, Store};

use crate::ApiError;
use crate::state::{AppState, JsonBodyLimit};

/// `axum::Json` with the contract's rejections, and its own size limit: a body that announces
/// more than [`JsonBodyLimit`] is refused from its `Content-Length` before a byte of it is
/// read, and a chunked one is cut off as it streams past the limit.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    JsonBodyLimit: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, bytes) = read_limited(req, JsonBodyLimit::from_ref(state)).await?;
        // Every body of this API is an object. serde would also build a struct from an array
        // (`[null, null]` as a tuple of its fields), which no client means.
        let json = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
        if json && bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|first| *first == b'[') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "the body must be a JSON object",
            ));
        }
        // axum's own extractor decides the content type and classifies JSON errors; it reads
        // the bytes we already hold, so its limit never applies.
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A request's whole body, at most `limit` bytes: refused with 413 from its `Content-Length`
/// before a byte is read, or as it streams past the limit. (The API's JSON and the web app's
/// forms share it, so both edges answer an oversized body alike.)
pub(crate) async fn read_limited(
    req: Request,
    JsonBodyLimit(limit): JsonBodyLimit,
) -> Result<(axum::http::request::Parts, axum::body::Bytes), ApiError> {
    let announced = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(e) if is_length_limit(&e) => Err(ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)),
        Err(e) => Err(ApiError::bad_request(format!("could not read the request body: {e}"))),
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", strip_prefix(&detail))
        }
        // serde_json reports numbers beyond f64 (1e400) as a syntax error, yet the document is
        // well-formed JSON: it is a value out of range.
        JsonRejection::JsonSyntaxError(_) if detail.contains("number out of range") => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", strip_prefix(&detail))
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("malformed JSON: {}", strip_prefix(&detail)))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// axum prefixes serde's message with a sentence about deserialising; the field path and the
/// problem that follow are what a client needs.
fn strip_prefix(detail: &str) -> String {
    detail.split_once(": ").map_or(detail, |(_, rest)| rest).to_owned()
}

/// `axum::extract::Query` answering 422 on a bad parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", strip_prefix(&e.body_text())))
            }
            Err(other) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", other.body_text())),
        }
    }
}

/// The request's deadline, minted by the deadline middleware when the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Deadline);

impl<S: Send + Sync> FromRequestParts<S> for RequestDeadline {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestDeadline>()
            .copied()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request has no deadline"))
    }
}

/// The request's `Idempotency-Key`, if it sent one.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let raw = value.to_str().map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
            Ok(Some(IdempotencyKey::parse(raw)?))
        }
    }
}

/// The raw bearer token of the request (logout needs it to revoke exactly this session).
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token> header"))?;
        let value = header.to_str().map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
        let (scheme, token) =
            value.split_once(' ').ok_or_else(|| ApiError::unauthenticated("malformed Authorization header"))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::unauthenticated("expected Authorization: Bearer <token>"));
        }
        Ok(Self(token.trim().to_owned()))
    }
}

/// The address a request comes from, for per-client limits: the connection's peer, unless the
/// peer is the configured trusted proxy, whose `X-Forwarded-For` is then believed (its last
/// entry: the address the proxy itself saw). Anyone else's `X-Forwarded-For` is ignored, since
/// a client can write any header it likes.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<AppState<S>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no peer address"))?;
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Ok(Self(client_address(peer, state.trusted_proxy, forwarded)))
    }
}

pub(crate) fn client_address(peer: IpAddr, trusted_proxy: Option<IpAddr>, forwarded_for: Option<&str>) -> IpAddr {
    if trusted_proxy != Some(peer) {
        return peer;
    }
    forwarded_for.and_then(|list| list.rsplit(',').next()).and_then(|last| last.trim().parse().ok()).unwrap_or(peer)
}

/// The authenticated caller. Resolving the token is a database read bounded by the request's
/// deadline, like any other.
pub struct AuthUser(pub Caller);

impl<S: Store> FromRequestParts<AppState<S>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let RequestDeadline(deadline) = RequestDeadline::from_request_parts(parts, state).await?;
        Ok(Self(state.stride.auth.authenticate(deadline, &token).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
    use stride_services::mocks::{Access, MockStore, MockUnitOfWork, MockUnits, ready};
    use stride_services::{Stride, SystemClock};
    use tower::ServiceExt;

    use super::IpAddr;

    use crate::{HttpConfig, InFlight, install_metrics_recorder};

    /// The real router over a store that hands out only the units of work given.
    fn app(units: MockUnits) -> axum::Router {
        let store = MockStore::new(units);
        let blobs = Arc::new(stride_services::mocks::MockDynBlobStore::new());
        let stride = Stride::new(store, Arc::new(SystemClock), blobs, Default::default()).unwrap();
        let config = HttpConfig { json_body_limit: 1024, ..HttpConfig::default() };
        crate::router(stride, &config, install_metrics_recorder(), InFlight::default())
    }

    fn no_database() -> MockUnits {
        let mut units = MockUnits::new();
        units.expect_open().never();
        units
    }

    async fn send(app: axum::Router, request: axum::http::Request<Body>) -> (u16, serde_json::Value) {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    fn get_me(authorization: Option<&str>) -> axum::http::Request<Body> {
        let mut request = axum::http::Request::get("/api/v1/me");
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_the_trusted_proxy_may_name_the_client() {
        let (peer, proxy): (IpAddr, IpAddr) = ("198.51.100.7".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(super::client_address(peer, None, Some("203.0.113.9")), peer, "no proxy configured");
        assert_eq!(super::client_address(peer, Some(proxy), Some("203.0.113.9")), peer, "not the proxy");
        assert_eq!(super::client_address(proxy, Some(proxy), Some("1.2.3.4, 203.0.113.9")), client, "its last entry");
        assert_eq!(super::client_address(proxy, Some(proxy), Some("garbage")), proxy);
        assert_eq!(super::client_address(proxy, Some(proxy), None), proxy);
    }

    #[tokio::test]
    async fn a_missing_or_malformed_token_is_refused_before_any_query() {
        for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer "), Some("Bearer")] {
            let (status, body) = send(app(no_database()), get_me(authorization)).await;
            assert_eq!(status, 401, "{authorization:?}");
            assert_eq!(body["error"]["code"], "unauthenticated", "{authorization:?}");
        }
    }

    #[tokio::test]
    async fn an_expired_or_revoked_token_is_refused() {
        let mut units = MockUnits::new();
        units.expect_open().withf(|a| *a == Access::Read).times(1).returning(|_| {
            let mut unit = MockUnitOfWork::new();
            unit.expect_user_by_session().returning(|_, _| ready(Ok(None)));
            Ok(unit)
        });
        let (status, body) = send(app(units), get_me(Some("Bearer expired-token"))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")));
    }

    fn login(
        content_type: Option<&str>,
        content_length: Option<usize>,
        body: &'static str,
    ) -> axum::http::Request<Body> {
        let peer = axum::extract::ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 40_000)));
        let mut request = axum::http::Request::post("/api/v1/auth/login").extension(peer);
        if let Some(value) = content_type {
            request = request.header(CONTENT_TYPE, value);
        }
        if let Some(length) = content_length {
            request = request.header(CONTENT_LENGTH, length);
        }
        request.body(Body::from(body)).unwrap()
    }

    #[tokio::test]
    async fn json_bodies_are_refused_with_the_contract_statuses_before_any_query() {
        let cases = [
            (login(Some("application/json"), Some(1_000_000), "{}"), 413, "announced past the limit"),
            (login(Some("application/json"), None, Box::leak("x".repeat(2048).into_boxed_str())), 413, "streamed"),
            (login(None, None, r#"{"username":"a","password":"b"}"#), 415, "no content type"),
            (login(Some("text/plain"), None, r#"{"username":"a","password":"b"}"#), 415, "not JSON"),
            (login(Some("application/json"), None, "{not json"), 400, "malformed"),
            (login(Some("application/json"), None, r#"{"username":1,"password":"b"}"#), 422, "wrong type"),
            (login(Some("application/json"), None, r#"["alice", "secret"]"#), 422, "an array for an object"),
        ];
        for (request, status, case) in cases {
            let (got, body) = send(app(no_database()), request).await;
            assert_eq!(got, status, "{case}: {body}");
            assert!(body["error"]["code"].is_string(), "{case}: {body}");
        }
    }

    #[tokio::test]
    async fn unknown_api_paths_and_methods_answer_in_the_envelope_and_others_do_not() {
        let request = axum::http::Request::get("/api/v1/nope").body(Body::empty()).unwrap();
        let (status, body) = send(app(no_database()), request).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
        let request = axum::http::Request::put("/api/v1/me").body(Body::empty()).unwrap();
        let (status, body) = send(app(no_database()), request).await;
        assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
        // Outside /api/v1 the web app answers, in HTML: its 404 for an unknown path.
        let request = axum::http::Request::get("/no/such/page").body(Body::empty()).unwrap();
        let (status, body) = send(app(no_database()), request).await;
        assert_eq!((status, body), (404, serde_json::Value::Null), "outside /api/v1 is not the API's");
    }
}
