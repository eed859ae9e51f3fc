//! Activities and their photos: list, create, show, edit, delete, upload, serve.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::NaiveDateTime;
use serde::Deserialize;
use stride_domain::{
    Activity, ActivityDraft, ActivityId, ActivityPatch, Cursor, LatLng, PhotoId, PhotoKind, StartedAt, TimeZone,
};
use stride_services::{Caller, Delivery, Store};

use crate::ApiError;
use crate::dto::{
    parse_distance, parse_duration, parse_latlng, parse_sport, parse_started_at, parse_title, parse_visibility,
};
use crate::edge::{PathId, receive_upload, serve_photo};
use crate::extract::RequestDeadline;
use crate::pages::views::{self, ActivityForm};
use crate::pages::{PageContext, PageError, PageId, page, see_other};
use crate::state::AppState;

use super::*;

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
            description: None,
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
    let mut profile = views::ElevationProfile::default();
    if activity.track.is_some() {
        let keys = vec![stride_services::StreamKey::Distance, stride_services::StreamKey::Altitude];
        let streams =
            app.stride.tracks.streams(deadline, caller.user.id, id, Some(keys), stride_services::Resolution::Medium);
        for (_, column) in streams.await? {
            match column {
                stride_services::Column::Distance(values) => profile.distance = values,
                stride_services::Column::Altitude(values) => profile.altitude = values,
                _ => {}
            }
        }
    }
    let efforts = if activity.track.is_some() {
        app.stride.records.best_efforts(deadline, caller.user.id, id).await?
    } else {
        Vec::new()
    };
    let markup = views::activity_detail(caller, &context.csrf, &activity, &photos, owner, &profile, &efforts);
    Ok(page(&context, StatusCode::OK, markup))
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
    // A recorded track decides its start, moving time and distance; the form's are ignored.
    let recorded = activity.track.is_some();
    let patch = ActivityPatch {
        sport: Some(draft.sport),
        title: Some(draft.title),
        started_at: Some(draft.started_at).filter(|_| !recorded),
        duration: Some(draft.duration).filter(|_| !recorded),
        distance: Some(draft.distance).filter(|_| !recorded),
        visibility: Some(draft.visibility),
        start_latlng: if recorded { None } else { Some(draft.start_latlng) },
        description: None,
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
