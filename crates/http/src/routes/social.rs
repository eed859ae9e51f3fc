//! People and friends: profiles by username, friend requests, friendships, blocks, the feed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use stride_domain::{Cursor, FriendRequestId, ListCursor, RequestDirection, UserId};
use stride_services::{Blocked, Caller, RequestSent, Store};

use crate::ApiError;
use crate::dto::{
    BlockBody, BlockCreate, ConnectionBody, FeedItemBody, FriendRequestBody, FriendRequestCreate, ListActivitiesQuery,
    ListQuery, ListRequestsQuery, PageBody, ProfileBody,
};
use crate::edge::PathId;
use crate::error::ErrorBody;
use crate::extract::{ApiJson, ApiQuery, AuthUser, RequestDeadline};
use crate::routes::activities::{activity_page, page_limit};
use crate::state::AppState;

const DEFAULT_LIST: u32 = 50;

fn list_page(limit: Option<&str>, cursor: Option<&str>) -> Result<(Option<ListCursor>, u32), ApiError> {
    let limit = page_limit(limit, DEFAULT_LIST)?;
    let after = cursor.map(ListCursor::decode).transpose().map_err(|e| ApiError::invalid("cursor", e))?;
    Ok((after, limit))
}

#[utoipa::path(
    get, path = "/api/v1/users/by-username/{username}", tag = "friends",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "Username")),
    responses(
        (status = 200, description = "The public profile: the way to find people", body = ProfileBody),
        (status = 404, description = "No such user, or a block between the two", body = ErrorBody),
        (status = 429, description = "Too many lookups by this user (`STRIDE_LOOKUPS_PER_MINUTE`); see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn get_profile_by_username<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(username): Path<String>,
) -> Result<Json<ProfileBody>, ApiError> {
    let profile = app.stride.social.profile_by_username(deadline, user.id, &username).await?;
    Ok(Json(ProfileBody::from(&profile)))
}

#[utoipa::path(
    post, path = "/api/v1/friends/requests", tag = "friends",
    security(("bearer" = [])),
    request_body = FriendRequestCreate,
    responses(
        (status = 201, description = "A pending request", body = FriendRequestBody),
        (status = 200, description = "They had already asked you: now friends", body = ConnectionBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such user, or a block between the two (the same answer)", body = ErrorBody),
        (status = 409, description = "Already friends (`already_friends`), already pending (`request_pending`), \
            or a limit reached (`limit_reached`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "To yourself, or an invalid field", body = ErrorBody),
        (status = 429, description = "Daily friend-request limit reached; see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn send_friend_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiJson(req): ApiJson<FriendRequestCreate>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    Ok(match app.stride.social.send_request(deadline, user.id, &req.username).await? {
        RequestSent::Pending(request) => (StatusCode::CREATED, Json(FriendRequestBody::from(&request))).into_response(),
        RequestSent::Friends(friendship) => (StatusCode::OK, Json(ConnectionBody::from(&friendship))).into_response(),
    })
}

#[utoipa::path(
    get, path = "/api/v1/friends/requests", tag = "friends",
    security(("bearer" = [])),
    params(ListRequestsQuery),
    responses(
        (status = 200, description = "Pending requests to you (incoming) or from you (outgoing), newest first",
            body = PageBody<FriendRequestBody>),
        (status = 422, description = "Bad direction, limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_friend_requests<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<ListRequestsQuery>,
) -> Result<Json<PageBody<FriendRequestBody>>, ApiError> {
    let direction = match query.direction.as_deref() {
        None | Some("incoming") => RequestDirection::Incoming,
        Some("outgoing") => RequestDirection::Outgoing,
        Some(_) => return Err(ApiError::invalid("direction", "must be incoming or outgoing")),
    };
    let (after, limit) = list_page(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = app.stride.social.requests(deadline, user.id, direction, after, limit).await?;
    Ok(Json(PageBody::of(&page, |r| FriendRequestBody::from(r))))
}

#[utoipa::path(
    post, path = "/api/v1/friends/requests/{id}/accept", tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Friend request id")),
    responses(
        (status = 200, description = "Now friends", body = ConnectionBody),
        (status = 404, description = "No such request addressed to you", body = ErrorBody),
        (status = 409, description = "A friend limit reached (`limit_reached`)", body = ErrorBody),
    )
)]
pub(crate) async fn accept_friend_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<FriendRequestId>,
) -> Result<Json<ConnectionBody>, ApiError> {
    let friendship = app.stride.social.accept(deadline, user.id, id).await?;
    Ok(Json(ConnectionBody::from(&friendship)))
}

#[utoipa::path(
    post, path = "/api/v1/friends/requests/{id}/decline", tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Friend request id")),
    responses(
        (status = 204, description = "Declined"),
        (status = 404, description = "No such request addressed to you", body = ErrorBody),
    )
)]
pub(crate) async fn decline_friend_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<FriendRequestId>,
) -> Result<StatusCode, ApiError> {
    app.stride.social.decline(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/api/v1/friends/requests/{id}", tag = "friends",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Friend request id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 404, description = "No such request sent by you", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_friend_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<FriendRequestId>,
) -> Result<StatusCode, ApiError> {
    app.stride.social.cancel(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/friends", tag = "friends",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Your friends, newest friendship first", body = PageBody<ConnectionBody>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_friends<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PageBody<ConnectionBody>>, ApiError> {
    let (after, limit) = list_page(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = app.stride.social.friends(deadline, user.id, after, limit).await?;
    Ok(Json(PageBody::of(&page, |c| ConnectionBody::from(c))))
}

#[utoipa::path(
    delete, path = "/api/v1/friends/{user_id}", tag = "friends",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The friend's user id")),
    responses(
        (status = 204, description = "No longer friends, for either side, at once"),
        (status = 404, description = "Not your friend", body = ErrorBody),
    )
)]
pub(crate) async fn delete_friend<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(other, ..): PathId<UserId>,
) -> Result<StatusCode, ApiError> {
    app.stride.social.unfriend(deadline, user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/blocks", tag = "friends",
    security(("bearer" = [])),
    request_body = BlockCreate,
    responses(
        (status = 201, description = "Blocked: any friendship and pending request ended", body = BlockBody),
        (status = 200, description = "Already blocked; nothing changed", body = BlockBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Yourself, or an invalid field", body = ErrorBody),
    )
)]
pub(crate) async fn block_user<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiJson(req): ApiJson<BlockCreate>,
) -> Result<(StatusCode, Json<BlockBody>), ApiError> {
    // An id in the body that names no one is "not found", like one in a path.
    let other: UserId = req.user_id.parse().map_err(|_| ApiError::not_found())?;
    Ok(match app.stride.social.block(deadline, user.id, other).await? {
        Blocked::New(block) => (StatusCode::CREATED, Json(BlockBody::from(&block))),
        Blocked::Already(block) => (StatusCode::OK, Json(BlockBody::from(&block))),
    })
}

#[utoipa::path(
    delete, path = "/api/v1/blocks/{user_id}", tag = "friends",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The blocked user's id")),
    responses(
        (status = 204, description = "Unblocked (no friendship comes back)"),
        (status = 404, description = "Not blocked by you", body = ErrorBody),
    )
)]
pub(crate) async fn unblock_user<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(other, ..): PathId<UserId>,
) -> Result<StatusCode, ApiError> {
    app.stride.social.unblock(deadline, user.id, other).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/blocks", tag = "friends",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The people you blocked, newest first", body = PageBody<BlockBody>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_blocks<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PageBody<BlockBody>>, ApiError> {
    let (after, limit) = list_page(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = app.stride.social.blocks(deadline, user.id, after, limit).await?;
    Ok(Json(PageBody::of(&page, |b| BlockBody::from(b))))
}

#[utoipa::path(
    get, path = "/api/v1/feed", tag = "feed",
    security(("bearer" = [])),
    params(ListActivitiesQuery),
    responses(
        (status = 200, description = "Your activities (all of them) and your friends' friends-only and public ones, \
            newest first by started_at, ties by id descending; each with its author", body = PageBody<FeedItemBody>),
        (status = 422, description = "Bad limit (1-100) or cursor", body = ErrorBody),
        (status = 503, description = "Database unavailable: the page fails whole, never skipping a friend",
            body = ErrorBody),
    )
)]
pub(crate) async fn get_feed<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(caller): AuthUser,
    ApiQuery(query): ApiQuery<ListActivitiesQuery>,
) -> Result<Json<PageBody<FeedItemBody>>, ApiError> {
    let (after, limit) = activity_page(&query)?;
    let page = app.stride.feed.page(deadline, &caller, after, limit).await?;
    Ok(Json(PageBody::feed_seen_by(&page, caller.user.id)))
}
