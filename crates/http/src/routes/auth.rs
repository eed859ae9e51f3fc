//! `/api/v1/auth/*`: register, login, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stride_domain::{Password, Username};
use stride_services::{Registration, SignedIn, Store};

use crate::ApiError;
use crate::dto::{AuthResponse, LoginRequest, RegisterRequest, UserBody, parse_display_name, parse_timezone};
use crate::error::ErrorBody;
use crate::extract::{ApiJson, AuthUser, BearerToken, ClientAddr, RequestDeadline};
use crate::state::AppState;

#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address; see Retry-After", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub(crate) async fn register<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    let registration = Registration {
        username: Username::parse(&req.username).map_err(|e| ApiError::invalid("username", e))?,
        password: Password::parse(&req.password).map_err(|e| ApiError::invalid("password", e))?,
        display_name: req.display_name.as_deref().map(parse_display_name).transpose()?,
        timezone: req.timezone.as_deref().map(parse_timezone).transpose()?,
    };
    let SignedIn { user, token } = app.stride.auth.register(deadline, registration, client).await?;
    Ok((StatusCode::CREATED, Json(AuthResponse { user: UserBody::from(&user), token: token.as_str().to_owned() })))
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password (indistinguishable)", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address, for this username from this address, or for this username from everywhere; see Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable, or too many logins at once; see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn login<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    req.check_lengths()?;
    let SignedIn { user, token } = app.stride.auth.login(deadline, &req.username, &req.password, client).await?;
    Ok(Json(AuthResponse { user: UserBody::from(&user), token: token.as_str().to_owned() }))
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
    )
)]
pub(crate) async fn logout<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    _caller: AuthUser,
    BearerToken(token): BearerToken,
) -> Result<StatusCode, ApiError> {
    app.stride.auth.logout(deadline, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
