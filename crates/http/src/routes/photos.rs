//! Photos: `POST/GET /api/v1/activities/{id}/photos`, `GET /api/v1/photos/{id}/display|thumb|original`,
//! `DELETE /api/v1/photos/{id}`. Receiving and serving are the edge's, shared with the pages.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use stride_domain::{ActivityId, PhotoId, PhotoKind};
use stride_services::{Caller, Delivery, Store};

use crate::ApiError;
use crate::dto::{ImageBytes, PhotoBody, PhotoListBody, PhotoUploadForm};
use crate::edge::{PathId, receive_upload, serve_photo};
use crate::error::ErrorBody;
use crate::extract::{AuthUser, RequestDeadline, idempotency_key};
use crate::state::AppState;

#[utoipa::path(
    post, path = "/api/v1/activities/{id}/photos", tag = "photos",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Activity id (the caller's own)"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "Makes retries safe: the same files (names, sizes, SHA-256) with the same key return the first result"),
    ),
    request_body(content = PhotoUploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Every photo stored, in upload order", body = PhotoListBody),
        (status = 400, description = "Malformed multipart body", body = ErrorBody),
        (status = 404, description = "No such activity, or not the caller's", body = ErrorBody),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for different files", body = ErrorBody),
        (status = 413, description = "A file over 25 MiB or a request over 100 MiB (`payload_too_large`), a file whose \
            pixels alone need more than the decode budget, or past the user's storage quota (`quota_exceeded`, naming the usage)", body = ErrorBody),
        (status = 415, description = "Not multipart, or a part that is not a JPEG, PNG or WebP image (judged from its bytes, \
            whatever its name or declared type)", body = ErrorBody),
        (status = 422, description = "No file, more than 10, or a file too large in pixels, truncated or corrupt", body = ErrorBody),
        (status = 429, description = "Two uploads of this user are already in flight; see Retry-After", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable, or the server's upload or decode memory stayed full \
            (`busy`, see Retry-After); nothing was stored", body = ErrorBody),
        (status = 504, description = "Deadline exceeded; nothing was stored", body = ErrorBody),
    )
)]
pub(crate) async fn upload_photos<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PhotoListBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let uploaded = receive_upload(&app, deadline, user.id, id, &headers, body, key).await?;
    let items = uploaded.photos().iter().map(PhotoBody::from).collect();
    Ok((StatusCode::CREATED, Json(PhotoListBody { items })))
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/photos", tag = "photos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 200, description = "The activity's photos by position", body = PhotoListBody),
        (status = 404, description = "No such activity, or not visible to the caller", body = ErrorBody),
    )
)]
pub(crate) async fn list_photos<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ActivityId>,
) -> Result<Json<PhotoListBody>, ApiError> {
    let photos = app.stride.photos.list(deadline, user.id, id).await?;
    Ok(Json(PhotoListBody { items: photos.iter().map(PhotoBody::from).collect() }))
}

#[utoipa::path(
    get, path = "/api/v1/photos/{id}/display", tag = "photos",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Photo id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The display version (long side ≤ 2048 px), with ETag and Cache-Control",
            content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"))),
        (status = 302, description = "A short-lived presigned URL of the same bytes (S3, when configured)"),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 404, description = "No such photo, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_display<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<PhotoId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, id, PhotoKind::Display, Delivery::RedirectWhenPresigned, &headers).await
}

#[utoipa::path(
    get, path = "/api/v1/photos/{id}/thumb", tag = "photos",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Photo id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The thumbnail (long side ≤ 320 px), with ETag and Cache-Control",
            content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"))),
        (status = 302, description = "A short-lived presigned URL of the same bytes (S3, when configured)"),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 404, description = "No such photo, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_thumb<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<PhotoId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, id, PhotoKind::Thumb, Delivery::RedirectWhenPresigned, &headers).await
}

#[utoipa::path(
    get, path = "/api/v1/photos/{id}/original", tag = "photos",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Photo id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The file exactly as uploaded (metadata included); owner only",
            content((ImageBytes = "image/jpeg"), (ImageBytes = "image/png"), (ImageBytes = "image/webp"))),
        (status = 304, description = "Unchanged since the ETag given"),
        (status = 404, description = "No such photo, or not the caller's", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_original<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<PhotoId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, id, PhotoKind::Original, Delivery::RedirectWhenPresigned, &headers).await
}

#[utoipa::path(
    delete, path = "/api/v1/photos/{id}", tag = "photos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Photo id")),
    responses(
        (status = 204, description = "Deleted, with its stored files"),
        (status = 404, description = "No such photo, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn delete_photo<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<PhotoId>,
) -> Result<StatusCode, ApiError> {
    app.stride.photos.delete(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
