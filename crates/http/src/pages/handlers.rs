//! The page handlers: each reads its form or query, calls the same service the API calls, and
//! answers with a page, a 303 to the page that shows the result, or a [`PageError`] page.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stride_domain::{
    Activity, ActivityCursor, ActivityDraft, ActivityId, ActivityPatch, Cursor, FriendRequestId, LatLng, Password,
    PhotoId, PhotoKind, RequestDirection, StartedAt, TimeZone, UserId, Username,
};
use stride_services::{Caller, Delivery, Registration, ServiceError, SignedIn, Store};

use super::session::{SESSION_COOKIE, check_csrf, cookie, csrf_cookie};
use super::views::{self, ActivityForm, FriendsView};
use super::{PageContext, PageError, PageId, page, see_other};
use crate::ApiError;
use crate::dto::{
    LoginRequest, parse_display_name, parse_distance, parse_duration, parse_latlng, parse_sport, parse_started_at,
    parse_timezone, parse_title, parse_visibility,
};
use crate::edge::{PathId, receive_upload, serve_photo};
use crate::extract::{ClientAddr, RequestDeadline};
use crate::state::AppState;

const PAGE_SIZE: u32 = 20;

/// A urlencoded form post, its CSRF token checked before anything else is read from it: a
/// post without the token of the request's `stride_csrf` cookie is a 403 page, whatever else
/// it holds, and a malformed one is a 400 page. Every page form goes through this extractor,
/// so no handler can forget the check.
pub(crate) struct PageForm<T>(T);

#[derive(Deserialize)]
struct SubmittedToken {
    csrf: Option<String>,
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bad_request = |message: String| PageError::Api(ApiError::bad_request(message));
        let urlencoded = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err(bad_request("a form post must be application/x-www-form-urlencoded".into()));
        }
        let cookie = csrf_cookie(req.headers()).map(str::to_owned);
        let body = Bytes::from_request(req, state).await.map_err(|rejection| bad_request(rejection.body_text()))?;
        let token: SubmittedToken = serde_urlencoded::from_bytes(&body).map_err(|e| bad_request(e.to_string()))?;
        check_csrf(cookie.as_deref(), token.csrf.as_deref())?;
        serde_urlencoded::from_bytes(&body).map(Self).map_err(|e| bad_request(e.to_string()))
    }
}

/// A post whose form holds nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub(crate) struct Confirmed {}

/// The upload form's token, which travels in the query (its body is the multipart stream).
#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CursorQuery {
    cursor: Option<String>,
}

fn cursor(query: &CursorQuery) -> Result<Option<ActivityCursor>, PageError> {
    query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(ActivityCursor::decode)
        .transpose()
        .map_err(|e| PageError::Api(ApiError::invalid("cursor", e)))
}

// ---- signing in and out ----

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login_page(context: PageContext) -> Response {
    if context.caller.is_some() {
        return see_other("/");
    }
    page(&context, StatusCode::OK, views::login(&context.csrf, "", None))
}

/// Signed in: the session cookie, and on to the dashboard.
fn signed_in(context: &PageContext, token: &str) -> Response {
    let mut response = see_other("/");
    let max_age = context.cookies.session_max_age.as_secs();
    response.headers_mut().append(SET_COOKIE, cookie(context.cookies, SESSION_COOKIE, token, max_age));
    response
}

pub(crate) async fn login<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let again =
        |status, message: &str| page(&context, status, views::login(&context.csrf, &form.username, Some(message)));
    let request = LoginRequest { username: form.username.clone(), password: form.password.clone() };
    if let Err(error) = request.check_lengths() {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &error.message));
    }
    match app.stride.auth.login(deadline, &form.username, &form.password).await {
        Ok(SignedIn { token, .. }) => Ok(signed_in(&context, token.as_str())),
        Err(ServiceError::Unauthenticated) => Ok(again(StatusCode::UNAUTHORIZED, "Wrong username or password.")),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    display_name: Option<String>,
    timezone: Option<String>,
}

pub(crate) async fn signup_page(context: PageContext) -> Response {
    if context.caller.is_some() {
        return see_other("/");
    }
    page(&context, StatusCode::OK, views::signup(&context.csrf, "", "UTC", None))
}

pub(crate) async fn signup<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    ClientAddr(client): ClientAddr,
    context: PageContext,
    PageForm(form): PageForm<SignupForm>,
) -> Result<Response, PageError> {
    let timezone = form.timezone.as_deref().unwrap_or("UTC");
    let again = |status, message: &str| {
        page(&context, status, views::signup(&context.csrf, &form.username, timezone, Some(message)))
    };
    let registration = (|| {
        Ok::<_, ApiError>(Registration {
            username: Username::parse(&form.username).map_err(|e| ApiError::invalid("username", e))?,
            password: Password::parse(&form.password).map_err(|e| ApiError::invalid("password", e))?,
            display_name: form
                .display_name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(parse_display_name)
                .transpose()?,
            timezone: Some(parse_timezone(timezone)?),
        })
    })();
    let registration = match registration {
        Ok(registration) => registration,
        Err(error) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &error.message)),
    };
    match app.stride.auth.register(deadline, registration, client).await {
        Ok(SignedIn { token, .. }) => Ok(signed_in(&context, token.as_str())),
        Err(ServiceError::Conflict { message, .. }) => Ok(again(StatusCode::CONFLICT, &message)),
        Err(other) => Err(other.into()),
    }
}

/// Ends this browser's session only; other sessions (other devices, API tokens) go on.
pub(crate) async fn logout<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    if let Some(token) = &context.session {
        app.stride.auth.logout(deadline, token).await?;
    }
    let mut response = see_other("/login");
    response.headers_mut().append(SET_COOKIE, cookie(context.cookies, SESSION_COOKIE, "gone", 0));
    Ok(response)
}

// ---- the dashboard ----

pub(crate) async fn dashboard<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let (stats, weekly) =
        tokio::try_join!(app.stride.stats.own(deadline, caller), app.stride.stats.weekly(deadline, caller, 12))?;
    Ok(page(&context, StatusCode::OK, views::dashboard(caller, &context.csrf, &stats, &weekly)))
}

// ---- activities ----

pub(crate) async fn activities<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let page_of = app.stride.activities.list_own(deadline, caller.user.id, cursor(&query)?, PAGE_SIZE).await?;
    let next = page_of.next_cursor.as_ref().map(Cursor::encode);
    Ok(page(&context, StatusCode::OK, views::activities(caller, &context.csrf, &page_of.items, next)))
}

#[derive(Deserialize)]
pub(crate) struct ActivityFormData {
    #[serde(default)]
    sport: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    distance_km: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    start_latlng: String,
}

impl ActivityFormData {
    fn shown(&self, logged_offset: Option<String>) -> ActivityForm {
        ActivityForm {
            sport: self.sport.clone(),
            title: self.title.clone(),
            started_at: self.started_at.clone(),
            timezone: self.timezone.clone(),
            logged_offset,
            duration: self.duration.clone(),
            distance_km: self.distance_km.clone(),
            visibility: self.visibility.clone(),
            start_latlng: self.start_latlng.clone(),
        }
    }

    /// The form as an activity's fields; `logged` is the start being edited, whose offset
    /// "keep" means.
    fn draft(&self, logged: Option<&StartedAt>) -> Result<ActivityDraft, ApiError> {
        Ok(ActivityDraft {
            sport: parse_sport(&self.sport)?,
            title: parse_title(self.title.trim())?,
            started_at: self.started_at(logged)?,
            duration: parse_duration(parse_moving_time(&self.duration)?)?,
            distance: parse_distance(
                self.distance_km
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| ApiError::invalid("distance", "must be a number of km"))?
                    * 1000.0,
            )?,
            visibility: parse_visibility(&self.visibility)?,
            start_latlng: parse_start(&self.start_latlng)?,
        })
    }

    fn started_at(&self, logged: Option<&StartedAt>) -> Result<StartedAt, ApiError> {
        let local = NaiveDateTime::parse_from_str(&self.started_at, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(&self.started_at, "%Y-%m-%dT%H:%M"))
            .map_err(|_| ApiError::invalid("start", "must be a date and time"))?;
        let at = match (self.timezone.as_str(), logged) {
            ("keep", Some(logged)) => {
                let offset = *logged.as_datetime().offset();
                local.and_local_timezone(offset).single()
            }
            (name, _) => TimeZone::parse(name).map_err(|e| ApiError::invalid("timezone", e))?.resolve_local(local),
        }
        .ok_or_else(|| ApiError::invalid("start", "that local time does not exist there (the clocks jump)"))?;
        parse_started_at(&at.to_rfc3339())
    }
}

/// Minutes (`45`), `m:ss` or `h:mm:ss`, as seconds.
fn parse_moving_time(raw: &str) -> Result<i64, ApiError> {
    let refuse = || ApiError::invalid("moving time", "must be minutes, or h:mm:ss");
    let parts: Vec<i64> =
        raw.trim().split(':').map(|p| p.parse::<i64>().map_err(|_| refuse())).collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [minutes] => minutes.checked_mul(60).ok_or_else(refuse),
        [m, s] if (0..60).contains(s) => Ok(m * 60 + s),
        [h, m, s] if (0..60).contains(m) && (0..60).contains(s) => Ok(h * 3600 + m * 60 + s),
        _ => Err(refuse()),
    }
}

/// `lat, lon`, or nothing.
fn parse_start(raw: &str) -> Result<Option<LatLng>, ApiError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let pair: Vec<f64> = raw
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::invalid("start point", "must be latitude, longitude"))?;
    parse_latlng(&pair).map(Some)
}

pub(crate) async fn new_activity(context: PageContext) -> Result<Response, PageError> {
    let caller = context.user()?;
    let now = chrono::Utc::now().with_timezone(&caller.user.timezone.tz());
    let form = ActivityForm {
        sport: "run".into(),
        started_at: now.format("%Y-%m-%dT%H:%M").to_string(),
        timezone: caller.user.timezone.name().into(),
        visibility: "friends".into(),
        ..Default::default()
    };
    let markup = views::activity_form(caller, &context.csrf, "/activities", "Log an activity", &form, None);
    Ok(page(&context, StatusCode::OK, markup))
}

pub(crate) async fn create_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PageForm(form): PageForm<ActivityFormData>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let draft = match form.draft(None) {
        Ok(draft) => draft,
        Err(error) => {
            let markup = views::activity_form(
                caller,
                &context.csrf,
                "/activities",
                "Log an activity",
                &form.shown(None),
                Some(&error.message),
            );
            return Ok(page(&context, StatusCode::UNPROCESSABLE_ENTITY, markup));
        }
    };
    let created = app.stride.activities.create(deadline, caller.user.id, draft, None).await?;
    Ok(see_other(&format!("/activities/{}", created.activity().id)))
}

pub(crate) async fn activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let activity = app.stride.activities.get(deadline, caller.user.id, id).await?;
    let photos = app.stride.photos.list(deadline, caller.user.id, id).await?;
    let owner = activity.user_id == caller.user.id;
    Ok(page(&context, StatusCode::OK, views::activity_detail(caller, &context.csrf, &activity, &photos, owner, None)))
}

/// The caller's own activity, or not found (someone else's is never editable).
async fn own_activity<S: Store>(
    app: &AppState<S>,
    deadline: stride_services::Deadline,
    caller: &Caller,
    id: ActivityId,
) -> Result<Activity, PageError> {
    let activity = app.stride.activities.get(deadline, caller.user.id, id).await?;
    if activity.user_id == caller.user.id { Ok(activity) } else { Err(PageError::NotFound) }
}

fn logged_offset(activity: &Activity) -> String {
    activity.started_at.as_datetime().offset().to_string()
}

pub(crate) async fn edit_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let activity = own_activity(&app, deadline, caller, id).await?;
    let form = ActivityForm {
        sport: activity.sport.as_str().into(),
        title: activity.title.as_str().into(),
        started_at: activity.started_at.as_datetime().naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
        timezone: "keep".into(),
        logged_offset: Some(logged_offset(&activity)),
        duration: views::hms(activity.duration.seconds().into()),
        distance_km: format!("{}", activity.distance.metres() / 1000.0),
        visibility: activity.visibility.as_str().into(),
        start_latlng: activity.start_latlng.map(|p| format!("{}, {}", p.lat(), p.lon())).unwrap_or_default(),
    };
    let action = format!("/activities/{}/edit", activity.id);
    Ok(page(
        &context,
        StatusCode::OK,
        views::activity_form(caller, &context.csrf, &action, "Edit activity", &form, None),
    ))
}

pub(crate) async fn update_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
    PageForm(form): PageForm<ActivityFormData>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let activity = own_activity(&app, deadline, caller, id).await?;
    let draft = match form.draft(Some(&activity.started_at)) {
        Ok(draft) => draft,
        Err(error) => {
            let action = format!("/activities/{}/edit", activity.id);
            let shown = form.shown(Some(logged_offset(&activity)));
            let markup =
                views::activity_form(caller, &context.csrf, &action, "Edit activity", &shown, Some(&error.message));
            return Ok(page(&context, StatusCode::UNPROCESSABLE_ENTITY, markup));
        }
    };
    let patch = ActivityPatch {
        sport: Some(draft.sport),
        title: Some(draft.title),
        started_at: Some(draft.started_at),
        duration: Some(draft.duration),
        distance: Some(draft.distance),
        visibility: Some(draft.visibility),
        start_latlng: Some(draft.start_latlng),
    };
    app.stride.activities.update(deadline, caller.user.id, activity.id, patch).await?;
    Ok(see_other(&format!("/activities/{}", activity.id)))
}

pub(crate) async fn confirm_delete<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let activity = own_activity(&app, deadline, caller, id).await?;
    Ok(page(&context, StatusCode::OK, views::confirm_delete(caller, &context.csrf, &activity)))
}

pub(crate) async fn delete_activity<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.activities.delete(deadline, caller.user.id, id).await?;
    Ok(see_other("/activities"))
}

// ---- photos ----

/// The multipart form of the detail page, with its CSRF token in the query (the body is
/// streamed straight into the photo service, files first).
pub(crate) async fn upload_photos<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
    Query(query): Query<CsrfOnly>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    context.check_csrf(query.csrf.as_deref())?;
    let caller = context.user()?;
    receive_upload(&app, deadline, caller.user.id, id, &headers, body, None).await?;
    Ok(see_other(&format!("/activities/{id}")))
}

pub(crate) async fn photo_thumb<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<PhotoId>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    Ok(serve_photo(app.clone(), deadline, caller.user.id, id, PhotoKind::Thumb, Delivery::Bytes, &headers).await?)
}

pub(crate) async fn photo_display<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<PhotoId>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    Ok(serve_photo(app.clone(), deadline, caller.user.id, id, PhotoKind::Display, Delivery::Bytes, &headers).await?)
}

// ---- friends ----

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    username: Option<String>,
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
        social.requests(deadline, me, RequestDirection::Incoming, None, 100),
        social.requests(deadline, me, RequestDirection::Outgoing, None, 100),
        social.friends(deadline, me, None, 100),
        social.blocks(deadline, me, None, 100),
    )?;
    let view = FriendsView {
        searched,
        found: found.as_ref(),
        incoming: &incoming.items,
        outgoing: &outgoing.items,
        friends: &friends.items,
        blocked: &blocked.items,
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

// ---- the feed ----

pub(crate) async fn feed<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let page_of = app.stride.feed.page(deadline, caller, cursor(&query)?, PAGE_SIZE).await?;
    // Thumbnails only for the items that have photos, fetched side by side.
    let photos = futures::future::try_join_all(page_of.items.iter().map(|item| {
        let (photos, viewer, id, any) =
            (&app.stride.photos, caller.user.id, item.activity.id, item.activity.photo_count > 0);
        async move { if any { photos.list(deadline, viewer, id).await } else { Ok(Vec::new()) } }
    }))
    .await?;
    let next = page_of.next_cursor.as_ref().map(Cursor::encode);
    let items: Vec<_> = page_of.items.into_iter().zip(photos).collect();
    Ok(page(&context, StatusCode::OK, views::feed(caller, &context.csrf, &items, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_time_reads_minutes_or_clock_notation() {
        assert_eq!(parse_moving_time("45").unwrap(), 2700);
        assert_eq!(parse_moving_time(" 45:30 ").unwrap(), 2730);
        assert_eq!(parse_moving_time("1:05:09").unwrap(), 3909);
        for bad in ["", "abc", "1:60", "1:00:61", "1:2:3:4"] {
            assert!(parse_moving_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_start_point_is_two_numbers_or_nothing() {
        assert_eq!(parse_start("  ").unwrap(), None);
        let start = parse_start("48.85, 2.35").unwrap().unwrap();
        assert_eq!((start.lat(), start.lon()), (48.85, 2.35));
        assert!(parse_start("91, 0").is_err());
        assert!(parse_start("north").is_err());
    }
}
