//! `/activities/{id}/best-efforts`, `/me/records`, `/users/{id}/records` and
//! `/me/stats/periods`.

use axum::Json;
use axum::extract::State;
use stride_domain::{ActivityId, Period, Sport, UserId};
use stride_services::{Caller, Store};

use crate::ApiError;
use crate::dto::{BestEffortsBody, PeriodsBody, PeriodsQuery, RecordsBody, RecordsQuery, parse_sport};
use crate::edge::PathId;
use crate::error::ErrorBody;
use crate::extract::{ApiQuery, AuthUser, RequestDeadline};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/best-efforts", tag = "records",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 200, description = "The activity's best efforts for the distances of its sport (empty for a \
            manual activity), each ranked among the three best you may see", body = BestEffortsBody),
        (status = 404, description = "No such activity, or not visible to the caller", body = ErrorBody),
    )
)]
pub(crate) async fn get_best_efforts<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<Json<BestEffortsBody>, ApiError> {
    let efforts = app.stride.records.best_efforts(deadline, user.id, id).await?;
    Ok(Json(BestEffortsBody::from(efforts.as_slice())))
}

fn required_sport(query: &RecordsQuery) -> Result<Sport, ApiError> {
    let raw = query.sport.as_deref().ok_or_else(|| ApiError::invalid("sport", "is required"))?;
    parse_sport(raw)
}

#[utoipa::path(
    get, path = "/api/v1/me/records", tag = "records",
    security(("bearer" = [])),
    params(RecordsQuery),
    responses(
        (status = 200, description = "Your three best efforts per distance of the sport, longest activity and \
            biggest climb", body = RecordsBody),
        (status = 422, description = "sport missing or unknown", body = ErrorBody),
    )
)]
pub(crate) async fn get_my_records<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Json<RecordsBody>, ApiError> {
    let sport = required_sport(&query)?;
    let records = app.stride.records.records(deadline, user.id, user.id, sport).await?;
    Ok(Json(RecordsBody::from(&records)))
}

#[utoipa::path(
    get, path = "/api/v1/users/{id}/records", tag = "records",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), RecordsQuery),
    responses(
        (status = 200, description = "A friend's records, counting only the activities you may see", body = RecordsBody),
        (status = 404, description = "No such user, or not a friend (strangers, blocks)", body = ErrorBody),
        (status = 422, description = "sport missing or unknown", body = ErrorBody),
    )
)]
pub(crate) async fn get_user_records<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(subject, ..): PathId<UserId>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<Json<RecordsBody>, ApiError> {
    let sport = required_sport(&query)?;
    let records = app.stride.records.records(deadline, user.id, subject, sport).await?;
    Ok(Json(RecordsBody::from(&records)))
}

#[utoipa::path(
    get, path = "/api/v1/me/stats/periods", tag = "stats",
    security(("bearer" = [])),
    params(PeriodsQuery),
    responses(
        (status = 200, description = "Your totals per month or year (of one sport, or all), oldest first, empty \
            periods included, the one holding today last", body = PeriodsBody),
        (status = 422, description = "period, sport or count invalid", body = ErrorBody),
    )
)]
pub(crate) async fn get_my_periods<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(caller): AuthUser,
    ApiQuery(query): ApiQuery<PeriodsQuery>,
) -> Result<Json<PeriodsBody>, ApiError> {
    // An empty value (`?sport=&count=`, as a form sends it) is the same as none.
    let given = |value: &Option<String>| value.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let (period, sport, count) = (given(&query.period), given(&query.sport), given(&query.count));
    let period = match period.as_deref() {
        None | Some("month") => Period::Month,
        Some("year") => Period::Year,
        Some(_) => return Err(ApiError::invalid("period", "must be month or year")),
    };
    let sport = sport.as_deref().map(parse_sport).transpose()?;
    let max = stride_services::MAX_PERIODS;
    let count = match count.as_deref() {
        None => 12,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("count", format!("must be from 1 to {max}")))?,
    };
    let stats = app.stride.records.periods(deadline, &caller, period, count, sport).await?;
    Ok(Json(PeriodsBody::from(&stats)))
}
