//! `/api/v1/me`: the caller's own profile.

use axum::Json;
use axum::extract::State;
use stride_services::{Caller, Store};

use crate::ApiError;
use crate::dto::{UpdateMeRequest, UserBody, parse_display_name, parse_timezone};
use crate::error::ErrorBody;
use crate::extract::{ApiJson, AuthUser, RequestDeadline};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/api/v1/me", tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserBody),
    )
)]
pub(crate) async fn get_me(AuthUser(Caller { user, .. }): AuthUser) -> Json<UserBody> {
    Json(UserBody::from(&user))
}

#[utoipa::path(
    patch, path = "/api/v1/me", tag = "me",
    security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The updated caller", body = UserBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
pub(crate) async fn update_me<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    let display_name = req.display_name.as_deref().map(parse_display_name).transpose()?;
    let timezone = req.timezone.as_deref().map(parse_timezone).transpose()?;
    let user = app.stride.auth.update_profile(deadline, user.id, display_name, timezone).await?;
    Ok(Json(UserBody::from(&user)))
}
