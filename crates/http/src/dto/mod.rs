//! Request and response shapes of the public API, and their conversion to domain values.
//!
//! Requests reject unknown fields, so no client can smuggle in `id`, `user_id` or timestamps.
//! Enumerations and instants arrive as strings and are parsed here, so that a bad value is
//! answered with a message that names the field.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use stride_domain::{
    Activity, ActivityDraft, ActivityPatch, Cursor, Description, DisplayName, Distance, MovingTime, Page, Photo,
    PhotoKind, Sport, StartedAt, TimeZone, Title, User, Visibility,
};
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;

mod photos;
mod records;
mod social;
mod tracks;

pub use photos::*;
pub use records::*;
pub use social::*;

pub use tracks::{ImportBody, ImportItemBody, StreamsQuery, TrackBody, ZoneBody, ZoneRequest, ZonesBody};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters of a-z, 0-9 and `_`; case-insensitive.
    #[schema(example = "alice")]
    pub username: String,
    /// 8–128 characters.
    pub password: String,
    pub display_name: Option<String>,
    /// IANA time zone; default `UTC`.
    #[schema(example = "Europe/Paris")]
    pub timezone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// No username is longer; a longer one is refused with 422 before any work.
    #[schema(min_length = 1, max_length = 32)]
    pub username: String,
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

impl LoginRequest {
    /// Bounds what a login may make the server hold or hash; the same for every name, so it
    /// reveals nothing about which names exist.
    pub(crate) fn check_lengths(&self) -> Result<(), ApiError> {
        if !(1..=32).contains(&self.username.chars().count()) {
            return Err(ApiError::invalid("username", "must be 1 to 32 characters"));
        }
        if !(1..=128).contains(&self.password.chars().count()) {
            return Err(ApiError::invalid("password", "must be 1 to 128 characters"));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub display_name: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub timezone: String,
    pub created_at: String,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.to_string(),
            display_name: user.display_name.as_str().to_owned(),
            timezone: user.timezone.name().to_owned(),
            created_at: user.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserBody,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateActivityRequest {
    #[schema(example = "run")]
    pub sport: String,
    pub title: Option<String>,
    /// RFC 3339 with the local UTC offset, e.g. `2026-03-01T07:30:00+01:00`.
    #[schema(example = "2026-03-01T07:30:00+01:00")]
    pub started_at: String,
    #[schema(example = 1800, value_type = i64)]
    pub duration_s: WholeNumber,
    #[schema(example = 5000.0)]
    pub distance_m: f64,
    /// `private`, `friends` (default) or `public`.
    pub visibility: Option<String>,
    /// Where it started, `[latitude, longitude]`; `null` or absent for none. Shown to the owner
    /// only. With the weather feature on, the weather at the start is looked up in the
    /// background (`weather_status`).
    #[schema(value_type = Option<Vec<f64>>, example = json!([48.8566, 2.3522]))]
    pub start_latlng: Option<Vec<f64>>,
    /// Free text, at most 10,000 characters.
    pub description: Option<String>,
}

/// Every field optional; an absent field is left unchanged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateActivityRequest {
    pub sport: Option<String>,
    pub title: Option<String>,
    pub started_at: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub duration_s: Option<WholeNumber>,
    pub distance_m: Option<f64>,
    pub visibility: Option<String>,
    /// `[latitude, longitude]` sets a new start point, `null` clears it and its weather.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<f64>>)]
    pub start_latlng: Option<Option<Vec<f64>>>,
    /// Text sets the description, `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The weather at an activity's start.
#[derive(Debug, Serialize, ToSchema)]
pub struct WeatherBody {
    pub temperature_c: f64,
    pub wind_speed_ms: f64,
    pub precipitation_mm: f64,
    /// The WMO weather interpretation code.
    pub code: i32,
    /// The hour observed (UTC), nearest the start.
    pub observed_at: String,
    /// `api` when this activity's own lookup answered, `cached` when a cached observation did.
    pub source: String,
}

impl From<&stride_domain::Weather> for WeatherBody {
    fn from(w: &stride_domain::Weather) -> Self {
        Self {
            temperature_c: w.observation.temperature_c,
            wind_speed_ms: w.observation.wind_speed_ms,
            precipitation_mm: w.observation.precipitation_mm,
            code: w.observation.code,
            observed_at: w.observation.observed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            source: w.source.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityBody {
    pub id: String,
    pub user_id: String,
    pub sport: String,
    pub title: String,
    /// RFC 3339 in the offset the client submitted.
    pub started_at: String,
    /// The calendar date in that offset (`YYYY-MM-DD`).
    pub local_date: String,
    pub duration_s: u32,
    pub distance_m: f64,
    pub visibility: String,
    pub created_at: String,
    pub updated_at: String,
    /// How many photos are attached (`GET /activities/{id}/photos` lists them).
    pub photo_count: u32,
    /// `[latitude, longitude]` for the owner; `null` for everyone else, and when there is none.
    #[schema(value_type = Option<Vec<f64>>)]
    pub start_latlng: Option<[f64; 2]>,
    /// The weather at the start, once looked up; `null` otherwise.
    pub weather: Option<WeatherBody>,
    /// `none` (no start point, or the feature is off), `pending`, `done` or `unavailable`.
    #[schema(example = "done")]
    pub weather_status: String,
    pub description: Option<String>,
    /// `manual`, or the format of the file it was imported from: `gpx`, `tcx`, `fit`.
    #[schema(example = "gpx")]
    pub source: String,
    /// The recorded track's summary; `null` for an activity typed in by hand.
    pub track: Option<TrackBody>,
}

impl ActivityBody {
    /// The activity as `viewer` sees it: the start point is the owner's alone.
    pub fn seen_by(a: &Activity, viewer: stride_domain::UserId) -> Self {
        Self {
            id: a.id.to_string(),
            user_id: a.user_id.to_string(),
            sport: a.sport.to_string(),
            title: a.title.as_str().to_owned(),
            started_at: a.started_at.as_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, false),
            local_date: a.local_date().date().format("%Y-%m-%d").to_string(),
            duration_s: a.duration.seconds(),
            distance_m: a.distance.metres(),
            visibility: a.visibility.to_string(),
            created_at: a.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            updated_at: a.updated_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            photo_count: a.photo_count,
            start_latlng: a.start_latlng.filter(|_| a.user_id == viewer).map(|p| [p.lat(), p.lon()]),
            weather: a.weather.as_ref().map(WeatherBody::from),
            weather_status: a.weather_status.as_str().to_owned(),
            description: a.description.as_ref().map(|d| d.as_str().to_owned()),
            source: a.source.as_str().to_owned(),
            track: a.track.as_ref().map(TrackBody::from),
        }
    }
}

/// One page of any list: activities, the feed, friends, requests, blocks.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageBody<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> PageBody<T> {
    pub fn of<U, C: Cursor>(page: &Page<U, C>, item: impl Fn(&U) -> T) -> Self {
        Self { items: page.items.iter().map(item).collect(), next_cursor: page.next_cursor.as_ref().map(C::encode) }
    }
}

impl PageBody<ActivityBody> {
    pub fn activities_seen_by(page: &stride_services::ActivityPage, viewer: stride_domain::UserId) -> Self {
        Self::of(page, |a| ActivityBody::seen_by(a, viewer))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListActivitiesQuery {
    /// 1–100, default 20. Read as text and parsed by the handler, so that an empty `limit=`
    /// is refused like any other non-number instead of meaning "no limit".
    #[param(value_type = u32, required = false)]
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WeeklyQuery {
    /// How many weeks, the current one last: 1–104, default 12.
    #[param(value_type = u32, required = false)]
    pub weeks: Option<String>,
}

/// One ISO week's totals (weeks start on Monday; an activity counts in the week of its local date).
#[derive(Debug, Serialize, ToSchema)]
pub struct WeekBody {
    /// The Monday, `YYYY-MM-DD`.
    pub week_start: String,
    pub activities: u64,
    pub distance_m: f64,
    pub duration_s: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyStatsBody {
    /// Oldest first, empty weeks included; the last is the week holding today in your time zone.
    pub weeks: Vec<WeekBody>,
    pub as_of: String,
}

impl From<&stride_services::WeeklyStats> for WeeklyStatsBody {
    fn from(stats: &stride_services::WeeklyStats) -> Self {
        Self {
            weeks: stats
                .weeks
                .iter()
                .map(|w| WeekBody {
                    week_start: w.week_start.format("%Y-%m-%d").to_string(),
                    activities: w.activities,
                    distance_m: w.distance_m,
                    duration_s: w.duration_s,
                })
                .collect(),
            as_of: stats.as_of.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}

/// An integer as JSON Schema means it: `1800` and `1800.0` are the same number, and a
/// schema-driven client may send either; `1800.5` is not an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        if let Some(whole) = number.as_i64() {
            return Ok(Self(whole));
        }
        match number.as_f64() {
            Some(f) if f.fract() == 0.0 && (i64::MIN as f64..=i64::MAX as f64).contains(&f) => Ok(Self(f as i64)),
            _ => Err(serde::de::Error::custom(format!("expected a whole number, got {number}"))),
        }
    }
}

pub(crate) fn parse_sport(raw: &str) -> Result<Sport, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("sport", e))
}

pub(crate) fn parse_title(raw: &str) -> Result<Title, ApiError> {
    Title::parse(raw).map_err(|e| ApiError::invalid("title", e))
}

pub(crate) fn parse_started_at(raw: &str) -> Result<StartedAt, ApiError> {
    StartedAt::parse(raw).map_err(|e| ApiError::invalid("started_at", e))
}

pub(crate) fn parse_duration(raw: i64) -> Result<MovingTime, ApiError> {
    MovingTime::from_seconds(raw).map_err(|e| ApiError::invalid("duration_s", e))
}

pub(crate) fn parse_distance(raw: f64) -> Result<Distance, ApiError> {
    Distance::from_metres(raw).map_err(|e| ApiError::invalid("distance_m", e))
}

pub(crate) fn parse_visibility(raw: &str) -> Result<Visibility, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("visibility", e))
}

pub(crate) fn parse_display_name(raw: &str) -> Result<DisplayName, ApiError> {
    DisplayName::parse(raw).map_err(|e| ApiError::invalid("display_name", e))
}

pub(crate) fn parse_latlng(raw: &[f64]) -> Result<stride_domain::LatLng, ApiError> {
    stride_domain::LatLng::from_pair(raw).map_err(|e| ApiError::invalid("start_latlng", e))
}

pub(crate) fn parse_description(raw: &str) -> Result<Description, ApiError> {
    Description::parse(raw).map_err(|e| ApiError::invalid("description", e))
}

pub(crate) fn parse_timezone(raw: &str) -> Result<TimeZone, ApiError> {
    TimeZone::parse(raw).map_err(|e| ApiError::invalid("timezone", e))
}

impl TryFrom<CreateActivityRequest> for ActivityDraft {
    type Error = ApiError;
    fn try_from(req: CreateActivityRequest) -> Result<Self, Self::Error> {
        Ok(ActivityDraft {
            sport: parse_sport(&req.sport)?,
            title: req.title.as_deref().map(parse_title).transpose()?.unwrap_or_default(),
            started_at: parse_started_at(&req.started_at)?,
            duration: parse_duration(req.duration_s.0)?,
            distance: parse_distance(req.distance_m)?,
            visibility: req.visibility.as_deref().map(parse_visibility).transpose()?.unwrap_or_default(),
            start_latlng: req.start_latlng.as_deref().map(parse_latlng).transpose()?,
            description: req.description.as_deref().map(parse_description).transpose()?,
        })
    }
}

impl TryFrom<UpdateActivityRequest> for ActivityPatch {
    type Error = ApiError;
    fn try_from(req: UpdateActivityRequest) -> Result<Self, Self::Error> {
        Ok(ActivityPatch {
            sport: req.sport.as_deref().map(parse_sport).transpose()?,
            title: req.title.as_deref().map(parse_title).transpose()?,
            started_at: req.started_at.as_deref().map(parse_started_at).transpose()?,
            duration: req.duration_s.map(|d| parse_duration(d.0)).transpose()?,
            distance: req.distance_m.map(parse_distance).transpose()?,
            visibility: req.visibility.as_deref().map(parse_visibility).transpose()?,
            start_latlng: req.start_latlng.map(|p| p.as_deref().map(parse_latlng).transpose()).transpose()?,
            description: req.description.map(|d| d.as_deref().map(parse_description).transpose()).transpose()?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBody {
    pub user_id: String,
    pub total_activities: u64,
    pub total_distance_m: f64,
    pub total_duration_s: u64,
    /// Consecutive local dates with an activity, ending today or yesterday (in the user's time zone).
    pub current_streak_days: u32,
    pub longest_streak_days: u32,
    /// When these numbers were computed (they may come from a cache).
    pub as_of: String,
}

impl From<&stride_services::UserStats> for StatsBody {
    fn from(stats: &stride_services::UserStats) -> Self {
        Self {
            user_id: stats.user_id.to_string(),
            total_activities: stats.total_activities,
            total_distance_m: stats.total_distance_m,
            total_duration_s: stats.total_duration_s,
            current_streak_days: stats.current_streak_days,
            longest_streak_days: stats.longest_streak_days,
            as_of: stats.as_of.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: serde_json::Value) -> Result<ActivityDraft, ApiError> {
        ActivityDraft::try_from(serde_json::from_value::<CreateActivityRequest>(body).unwrap())
    }

    #[test]
    fn a_valid_create_request_becomes_a_draft_with_defaults() {
        let draft = create(serde_json::json!({
            "sport": "run", "started_at": "2026-03-01T07:30:00+01:00", "duration_s": 1800, "distance_m": 5000.0
        }))
        .unwrap();
        assert_eq!(draft.visibility, Visibility::default());
        assert_eq!(draft.title, Title::default());
        assert_eq!(draft.started_at.offset_seconds(), 3600, "the offset the client sent is kept");
    }

    #[test]
    fn each_invalid_field_is_named_in_a_422() {
        let valid = serde_json::json!({
            "sport": "run", "started_at": "2026-03-01T07:30:00+01:00", "duration_s": 1800, "distance_m": 5000.0
        });
        for (field, value) in [
            ("sport", serde_json::json!("teleport")),
            ("started_at", serde_json::json!("yesterday")),
            ("started_at", serde_json::json!("2026-03-01T07:30:00")),
            ("started_at", serde_json::json!("2026-03-01T23:59:60+01:00")),
            ("started_at", serde_json::json!("1850-06-01T07:30:00Z")),
            ("duration_s", serde_json::json!(0)),
            ("distance_m", serde_json::json!(-1.0)),
            ("visibility", serde_json::json!("everyone")),
            ("title", serde_json::json!("x".repeat(500))),
        ] {
            let mut body = valid.clone();
            body[field] = value.clone();
            let error = create(body).unwrap_err();
            assert_eq!(error.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY, "{field} = {value}");
            assert!(error.message.starts_with(field), "{field} = {value}: {}", error.message);
        }
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let parse = |json: &str| serde_json::from_str::<WholeNumber>(json).map(|n| n.0).ok();
        assert_eq!(parse("1800"), Some(1800));
        assert_eq!(parse("1800.0"), Some(1800));
        assert_eq!(parse("1800.5"), None);
        assert_eq!(parse("\"1800\""), None);
        assert_eq!(parse("1e400"), None);
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patch: UpdateActivityRequest = serde_json::from_value(serde_json::json!({"title": "Renamed"})).unwrap();
        let patch = ActivityPatch::try_from(patch).unwrap();
        assert_eq!(patch.title, Some(Title::parse("Renamed").unwrap()));
        assert!(patch.sport.is_none() && patch.started_at.is_none() && patch.visibility.is_none());
    }
}
