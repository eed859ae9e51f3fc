//! `/api/v1/activities`: create (idempotently), list own, read, change, delete.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stride_domain::{ActivityCursor, ActivityDraft, ActivityId, ActivityPatch, Cursor, UserId};
use stride_services::{Caller, Store};

use crate::ApiError;
use crate::dto::{ActivityBody, CreateActivityRequest, ListActivitiesQuery, PageBody, UpdateActivityRequest};
use crate::edge::PathId;
use crate::error::ErrorBody;
use crate::extract::{ApiJson, ApiQuery, AuthUser, RequestDeadline, idempotency_key};
use crate::state::AppState;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

#[utoipa::path(
    post, path = "/api/v1/activities", tag = "activities",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes retries safe: the same key (same user, within 24 h) returns the first result")),
    request_body = CreateActivityRequest,
    responses(
        (status = 201, description = "Created (or the first result of an idempotent retry)", body = ActivityBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for a different request", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, or `started_at` more than a day after now", body = ErrorBody),
        (status = 429, description = "Too many start points set by hand this hour (`STRIDE_START_POINTS_PER_HOUR`); see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn create_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateActivityRequest>,
) -> Result<(StatusCode, Json<ActivityBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let draft = ActivityDraft::try_from(req)?;
    let created = app.stride.activities.create(deadline, user.id, draft, key).await?;
    Ok((StatusCode::CREATED, Json(ActivityBody::seen_by(created.activity(), user.id))))
}

#[utoipa::path(
    get, path = "/api/v1/activities", tag = "activities",
    security(("bearer" = [])),
    params(ListActivitiesQuery),
    responses(
        (status = 200, description = "The caller's activities, newest first", body = PageBody<ActivityBody>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_activities<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<ListActivitiesQuery>,
) -> Result<Json<PageBody<ActivityBody>>, ApiError> {
    let (after, limit) = activity_page(&query)?;
    let page = app.stride.activities.list_own(deadline, user.id, after, limit).await?;
    Ok(Json(PageBody::activities_seen_by(&page, user.id)))
}

#[utoipa::path(
    get, path = "/api/v1/users/{id}/activities", tag = "activities",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), ListActivitiesQuery),
    responses(
        (status = 200, description = "The user's activities the caller may see, newest first: everything to \
            themselves, friends and public ones to a friend, public ones to anyone else", body = PageBody<ActivityBody>),
        (status = 404, description = "No such user, or a block between the two", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_user_activities<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(owner, ..): PathId<UserId>,
    ApiQuery(query): ApiQuery<ListActivitiesQuery>,
) -> Result<Json<PageBody<ActivityBody>>, ApiError> {
    let (after, limit) = activity_page(&query)?;
    let page = app.stride.activities.list_of(deadline, user.id, owner, after, limit).await?;
    Ok(Json(PageBody::activities_seen_by(&page, user.id)))
}

/// The cursor and limit of an activity list, validated: a garbled cursor or a limit outside
/// 1–100 is 422.
pub(crate) fn activity_page(query: &ListActivitiesQuery) -> Result<(Option<ActivityCursor>, u32), ApiError> {
    let limit = page_limit(query.limit.as_deref(), DEFAULT_PAGE)?;
    let after =
        query.cursor.as_deref().map(ActivityCursor::decode).transpose().map_err(|e| ApiError::invalid("cursor", e))?;
    Ok((after, limit))
}

/// `limit` of any list: 1–100, `default` when absent.
pub(crate) fn page_limit(raw: Option<&str>, default: u32) -> Result<u32, ApiError> {
    let refuse = || ApiError::invalid("limit", format!("must be from 1 to {MAX_PAGE}"));
    let limit = match raw {
        None => default,
        Some(raw) => raw.parse().map_err(|_| refuse())?,
    };
    if (1..=MAX_PAGE).contains(&limit) { Ok(limit) } else { Err(refuse()) }
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}", tag = "activities",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 200, description = "The activity", body = ActivityBody),
        (status = 404, description = "No such activity, or not visible to the caller", body = ErrorBody),
    )
)]
pub(crate) async fn get_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<Json<ActivityBody>, ApiError> {
    let activity = app.stride.activities.get(deadline, user.id, id).await?;
    Ok(Json(ActivityBody::seen_by(&activity, user.id)))
}

#[utoipa::path(
    patch, path = "/api/v1/activities/{id}", tag = "activities",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    request_body = UpdateActivityRequest,
    responses(
        (status = 200, description = "The updated activity", body = ActivityBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such activity, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid field, or `started_at` more than a day after now", body = ErrorBody),
        (status = 429, description = "Too many start points set by hand this hour (`STRIDE_START_POINTS_PER_HOUR`); see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn update_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
    ApiJson(req): ApiJson<UpdateActivityRequest>,
) -> Result<Json<ActivityBody>, ApiError> {
    let patch = ActivityPatch::try_from(req)?;
    let activity = app.stride.activities.update(deadline, user.id, id, patch).await?;
    Ok(Json(ActivityBody::seen_by(&activity, user.id)))
}

#[utoipa::path(
    delete, path = "/api/v1/activities/{id}", tag = "activities",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such activity, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn delete_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<StatusCode, ApiError> {
    app.stride.activities.delete(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
