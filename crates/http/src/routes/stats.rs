//! `/api/v1/me/stats` and `/api/v1/users/{id}/stats`.

use axum::Json;
use axum::extract::State;
use stride_domain::UserId;
use stride_services::{Caller, Store};

use crate::ApiError;
use crate::dto::{StatsBody, WeeklyQuery, WeeklyStatsBody};
use crate::edge::PathId;
use crate::error::ErrorBody;
use crate::extract::{ApiQuery, AuthUser, RequestDeadline};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/api/v1/me/stats", tag = "stats",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's statistics, counting every activity", body = StatsBody),
    )
)]
pub(crate) async fn get_my_stats<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(caller): AuthUser,
) -> Result<Json<StatsBody>, ApiError> {
    let stats = app.stride.stats.own(deadline, &caller).await?;
    Ok(Json(StatsBody::from(&stats)))
}

#[utoipa::path(
    get, path = "/api/v1/users/{id}/stats", tag = "stats",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user's statistics, counting only what the caller may see", body = StatsBody),
        (status = 404, description = "No such user, or not visible to the caller", body = ErrorBody),
    )
)]
pub(crate) async fn get_user_stats<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(subject, ..): PathId<UserId>,
) -> Result<Json<StatsBody>, ApiError> {
    let stats = app.stride.stats.of(deadline, user.id, subject).await?;
    Ok(Json(StatsBody::from(&stats)))
}

#[utoipa::path(
    get, path = "/api/v1/me/stats/weekly", tag = "stats",
    security(("bearer" = [])),
    params(WeeklyQuery),
    responses(
        (status = 200, description = "The caller's distance, time and count per ISO week (Monday first), oldest \
            first, empty weeks included, the current week (holding today in the caller's time zone) last",
            body = WeeklyStatsBody),
        (status = 422, description = "weeks outside 1-104", body = ErrorBody),
    )
)]
pub(crate) async fn get_my_weekly_stats<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(caller): AuthUser,
    ApiQuery(query): ApiQuery<WeeklyQuery>,
) -> Result<Json<WeeklyStatsBody>, ApiError> {
    let weeks = match query.weeks.as_deref() {
        None => 12,
        Some(raw) => raw
            .parse()
            .map_err(|_| ApiError::invalid("weeks", format!("must be from 1 to {}", stride_services::MAX_WEEKS)))?,
    };
    let stats = app.stride.stats.weekly(deadline, &caller, weeks).await?;
    Ok(Json(WeeklyStatsBody::from(&stats)))
}
