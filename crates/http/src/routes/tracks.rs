//! Reading a track back — `GET /api/v1/activities/{id}/streams`, `/export.gpx`, `/file` —
//! and the caller's privacy zones, `/api/v1/me/privacy-zones`.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stride_domain::{ActivityId, ZoneId};
use stride_services::{Caller, Column, Resolution, Store, StreamKey};

use crate::ApiError;
use crate::dto::{StreamsQuery, ZoneBody, ZoneRequest, ZonesBody};
use crate::edge::PathId;
use crate::error::ErrorBody;
use crate::extract::{ApiJson, ApiQuery, AuthUser, RequestDeadline};
use crate::state::AppState;

fn parse_keys(raw: Option<&str>) -> Result<Option<Vec<StreamKey>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.split(',')
        .map(|key| {
            StreamKey::parse(key.trim()).ok_or_else(|| {
                ApiError::invalid(
                    "keys",
                    format!("unknown key {key:?}; use time, latlng, altitude, distance, heartrate, cadence, power"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn column_json(column: Column) -> Value {
    match column {
        Column::Time(v) => json!(v),
        Column::Latlng(v) => json!(v),
        Column::Altitude(v) => json!(v),
        Column::Distance(v) => json!(v),
        Column::Heartrate(v) => json!(v),
        Column::Cadence(v) => json!(v),
        Column::Power(v) => json!(v),
    }
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/streams", tag = "tracks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id"), StreamsQuery),
    responses(
        (status = 200, description = "One array per key the track has, a value per point (`null` where the point has \
            none): `time` in seconds from the first timed point, `latlng` as [lat, lon], `altitude` in m, `distance` \
            the cumulative distance in m, `heartrate`, `cadence`, `power`. To anyone but the owner, the points inside \
            the owner's privacy zones are left out.", body = Object),
        (status = 404, description = "No such activity, not visible to the caller, or no track", body = ErrorBody),
        (status = 422, description = "An unknown key or resolution", body = ErrorBody),
    )
)]
pub(crate) async fn get_streams<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
    ApiQuery(query): ApiQuery<StreamsQuery>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let keys = parse_keys(query.keys.as_deref())?;
    let resolution = match query.resolution.as_deref() {
        None => Resolution::High,
        Some(raw) => {
            Resolution::parse(raw).ok_or_else(|| ApiError::invalid("resolution", "must be low, medium or high"))?
        }
    };
    let streams = app.stride.tracks.streams(deadline, user.id, id, keys, resolution).await?;
    Ok(Json(streams.into_iter().map(|(key, column)| (key.as_str().to_owned(), column_json(column))).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/export.gpx", tag = "tracks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 200, description = "The track as GPX 1.1 (time, elevation, heart rate and cadence in Garmin's \
            TrackPointExtension); without the points inside the owner's privacy zones for anyone else",
            content_type = "application/gpx+xml", body = String),
        (status = 404, description = "No such activity, not visible to the caller, or no track", body = ErrorBody),
    )
)]
pub(crate) async fn export_gpx<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<Response, ApiError> {
    let gpx = app.stride.tracks.export_gpx(deadline, user.id, id).await?;
    let disposition = format!("attachment; filename=\"{id}.gpx\"");
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/gpx+xml")),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
        ],
        gpx,
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/file", tag = "tracks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id (the caller's own)")),
    responses(
        (status = 200, description = "The file as it was uploaded", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such activity, not the caller's, or not imported from a file", body = ErrorBody),
    )
)]
pub(crate) async fn get_original_file<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<Response, ApiError> {
    let (name, bytes) = app.stride.tracks.original(deadline, user.id, id).await?;
    // Only visible ASCII, no quotes or backslashes, survives in the header as given.
    let safe: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let disposition = format!("attachment; filename=\"{safe}\"");
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (
                CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(
    post, path = "/api/v1/me/privacy-zones", tag = "me",
    security(("bearer" = [])),
    request_body = ZoneRequest,
    responses(
        (status = 201, description = "The zone; it applies to every activity from the next request on", body = ZoneBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "The caller has 10 zones already (`limit_reached`)", body = ErrorBody),
        (status = 422, description = "A latitude, longitude or radius (200–2,000 m) out of range", body = ErrorBody),
    )
)]
pub(crate) async fn create_privacy_zone<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiJson(req): ApiJson<ZoneRequest>,
) -> Result<(StatusCode, Json<ZoneBody>), ApiError> {
    let zone = app.stride.tracks.add_zone(deadline, user.id, req.lat, req.lon, req.radius_m).await?;
    Ok((StatusCode::CREATED, Json(ZoneBody::from(&zone))))
}

#[utoipa::path(
    get, path = "/api/v1/me/privacy-zones", tag = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's privacy zones", body = ZonesBody))
)]
pub(crate) async fn list_privacy_zones<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
) -> Result<Json<ZonesBody>, ApiError> {
    let zones = app.stride.tracks.zones(deadline, user.id).await?;
    Ok(Json(ZonesBody { items: zones.iter().map(ZoneBody::from).collect() }))
}

#[utoipa::path(
    delete, path = "/api/v1/me/privacy-zones/{id}", tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Zone id")),
    responses(
        (status = 204, description = "Removed; it no longer applies from the next request on"),
        (status = 404, description = "No such zone of the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn delete_privacy_zone<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ZoneId>,
) -> Result<StatusCode, ApiError> {
    app.stride.tracks.delete_zone(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
