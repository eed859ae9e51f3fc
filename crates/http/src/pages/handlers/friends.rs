//! Friends: search, requests, friendships and blocks.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use stride_domain::{Cursor, FriendRequestId, ListCursor, RequestDirection, UserId};
use stride_services::{ServiceError, Store};

use crate::ApiError;
use crate::edge::PathId;
use crate::extract::RequestDeadline;
use crate::pages::views::{self, FriendsView, Listed};
use crate::pages::{PageContext, PageError, PageId, page, see_other};
use crate::state::AppState;

use super::*;

/// The friends page: a search, and where each of its four lists starts (a list's "Load more"
/// link carries its own cursor).
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    username: Option<String>,
    incoming: Option<String>,
    outgoing: Option<String>,
    friends: Option<String>,
    blocked: Option<String>,
}

fn list_cursor(name: &'static str, raw: Option<&str>) -> Result<Option<ListCursor>, PageError> {
    raw.map(ListCursor::decode).transpose().map_err(|e| PageError::Api(ApiError::invalid(name, e)))
}

/// The link to the next page of one list of the friends page.
fn more<T>(list: &'static str, page: &stride_services::Page<T>) -> Option<String> {
    page.next_cursor.as_ref().map(|cursor| format!("/friends?{list}={}", cursor.encode()))
}

pub(crate) async fn friends<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let me = caller.user.id;
    let social = &app.stride.social;
    let searched = query.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let found = match searched {
        Some(username) => match social.profile_by_username(deadline, me, username).await {
            Ok(profile) if profile.id != me => Some(profile),
            Ok(_) | Err(ServiceError::NotFound) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    let (incoming, outgoing, friends, blocked) = tokio::try_join!(
        social.requests(
            deadline,
            me,
            RequestDirection::Incoming,
            list_cursor("incoming", query.incoming.as_deref())?,
            PAGE_SIZE
        ),
        social.requests(
            deadline,
            me,
            RequestDirection::Outgoing,
            list_cursor("outgoing", query.outgoing.as_deref())?,
            PAGE_SIZE
        ),
        social.friends(deadline, me, list_cursor("friends", query.friends.as_deref())?, PAGE_SIZE),
        social.blocks(deadline, me, list_cursor("blocked", query.blocked.as_deref())?, PAGE_SIZE),
    )?;
    let view = FriendsView {
        searched,
        found: found.as_ref(),
        incoming: Listed { items: &incoming.items, next: more("incoming", &incoming) },
        outgoing: Listed { items: &outgoing.items, next: more("outgoing", &outgoing) },
        friends: Listed { items: &friends.items, next: more("friends", &friends) },
        blocked: Listed { items: &blocked.items, next: more("blocked", &blocked) },
        message: None,
    };
    Ok(page(&context, StatusCode::OK, views::friends(caller, &context.csrf, &view)))
}

#[derive(Deserialize)]
pub(crate) struct UsernameForm {
    #[serde(default)]
    username: String,
}

pub(crate) async fn send_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PageForm(form): PageForm<UsernameForm>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.social.send_request(deadline, caller.user.id, &form.username).await?;
    Ok(see_other("/friends"))
}

/// `/friends/requests/{id}/{action}`: the id by [`PageId`], the action from the second segment.
pub(crate) async fn answer_request<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<FriendRequestId>,
    Path((_, action)): Path<(String, String)>,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let social = &app.stride.social;
    match action.as_str() {
        "accept" => social.accept(deadline, caller.user.id, id).await.map(drop)?,
        "decline" => social.decline(deadline, caller.user.id, id).await?,
        "cancel" => social.cancel(deadline, caller.user.id, id).await?,
        _ => return Err(PageError::NotFound),
    }
    Ok(see_other("/friends"))
}

pub(crate) async fn unfriend<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(other, ..): PageId<UserId>,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.social.unfriend(deadline, caller.user.id, other).await?;
    Ok(see_other("/friends"))
}

#[derive(Deserialize)]
pub(crate) struct UserIdForm {
    #[serde(default)]
    user_id: String,
}

pub(crate) async fn block<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PageForm(form): PageForm<UserIdForm>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let other: UserId = form.user_id.parse().map_err(|_| PageError::NotFound)?;
    app.stride.social.block(deadline, caller.user.id, other).await?;
    Ok(see_other("/friends"))
}

pub(crate) async fn unblock<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(other, ..): PageId<UserId>,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.social.unblock(deadline, caller.user.id, other).await?;
    Ok(see_other("/friends"))
}
