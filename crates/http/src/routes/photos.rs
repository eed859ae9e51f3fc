//! Photos: `POST/GET /api/v1/activities/{id}/photos`, `GET /api/v1/photos/{id}/display|thumb|original`,
//! `DELETE /api/v1/photos/{id}`.
//!
//! The upload body is read as a stream and never trusted for its size: a `Content-Length`
//! past the limit is refused before a byte is read, and multer stops at the limits as the bytes
//! arrive (a chunked body has no length to check first). A body that sends nothing for
//! `stall_timeout` is cut off, so a slow-loris upload cannot hold its slot for the whole
//! two-minute upload deadline. Ownership is checked before the body is read.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use stride_domain::{ActivityId, PhotoId, PhotoKind, UserId};
use stride_services::{Caller, Deadline, Delivery, IdempotencyKey, Served, Store, UploadFile, Uploaded};

use crate::ApiError;
use crate::dto::{ImageBytes, PhotoBody, PhotoListBody, PhotoUploadForm};
use crate::error::ErrorBody;
use crate::extract::{AuthUser, RequestDeadline, idempotency_key};
use crate::routes::parse_id;
use crate::state::{AppState, UploadLimits};

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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such activity, or not the caller's", body = ErrorBody),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused for different files", body = ErrorBody),
        (status = 413, description = "A file over 25 MiB or a request over 100 MiB", body = ErrorBody),
        (status = 415, description = "Not multipart, or a file that is not JPEG, PNG or WebP", body = ErrorBody),
        (status = 422, description = "No file, more than 10, or a file too large in pixels, truncated or corrupt", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable; nothing was stored", body = ErrorBody),
        (status = 504, description = "Deadline exceeded; nothing was stored", body = ErrorBody),
    )
)]
pub(crate) async fn upload_photos<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PhotoListBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let uploaded = receive_upload(&app, deadline, user.id, &id, &headers, body, key).await?;
    let items = uploaded.photos().iter().map(PhotoBody::from).collect();
    Ok((StatusCode::CREATED, Json(PhotoListBody { items })))
}

/// A multipart upload into the photo service, shared by the API and the web app's form: the
/// type and declared size are refused before a byte is read, the owner is checked before the
/// body is, and the files stream in under the upload limits.
pub(crate) async fn receive_upload<S: Store>(
    app: &AppState<S>,
    deadline: Deadline,
    owner: UserId,
    activity: &str,
    headers: &HeaderMap,
    body: Body,
    key: Option<IdempotencyKey>,
) -> Result<Uploaded, ApiError> {
    let limits = app.uploads;
    let boundary = multipart_boundary(headers)?;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_request_bytes) {
        return Err(request_too_large(limits));
    }
    let id: ActivityId = parse_id(activity)?;
    app.stride.photos.check_upload(deadline, owner, id).await?;
    let files = read_files(body, boundary, limits).await?;
    Ok(app.stride.photos.upload(deadline, owner, id, files, key).await?)
}

fn multipart_boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: multipart/form-data with one `photo` part per file",
        ));
    }
    multer::parse_boundary(content_type)
        .map_err(|_| ApiError::bad_request("the multipart Content-Type has no boundary".to_owned()))
}

fn request_too_large(limits: UploadLimits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the upload is larger than {} bytes", limits.max_request_bytes),
    )
}

/// Why the body stream ended early.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the body sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("reading the body failed: {0}")]
    Read(String),
}

/// The body's chunks, ending with `Stalled` if none arrives within `stall`.
fn stall_guarded(body: Body, stall: Duration) -> impl Stream<Item = Result<Bytes, BodyError>> {
    futures::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(stall, stream.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(Some(Err(error))) => Some((Err(BodyError::Read(error.to_string())), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BodyError::Stalled(stall)), None)),
        }
    })
}

/// Every `photo` part, each checked against the limits as it streams in.
async fn read_files(body: Body, boundary: String, limits: UploadLimits) -> Result<Vec<UploadFile>, ApiError> {
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_request_bytes).per_field(limits.max_file_bytes));
    let mut multipart =
        multer::Multipart::with_constraints(stall_guarded(body, limits.stall_timeout), boundary, constraints);
    let mut files = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, limits, None))? {
        if field.name() != Some("photo") {
            let name = field.name().unwrap_or("(unnamed)").to_owned();
            return Err(ApiError::invalid(
                "photo",
                format!("unexpected form field {name:?}; send each file as `photo`"),
            ));
        }
        if files.len() == limits.max_files {
            return Err(ApiError::invalid("photo", format!("at most {} files per upload", limits.max_files)));
        }
        let name = field.file_name().map_or_else(|| format!("photo #{}", files.len() + 1), str::to_owned);
        let mut bytes = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limits, Some(&name)))? {
            bytes.extend_from_slice(&chunk);
        }
        files.push(UploadFile { name, bytes: bytes.freeze() });
    }
    if files.is_empty() {
        return Err(ApiError::invalid("photo", "at least one file is required, as a `photo` part"));
    }
    Ok(files)
}

fn multipart_error(error: multer::Error, limits: UploadLimits, file: Option<&str>) -> ApiError {
    match error {
        multer::Error::FieldSizeExceeded { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{}: larger than {} bytes", file.unwrap_or("a file"), limits.max_file_bytes),
        ),
        multer::Error::StreamSizeExceeded { .. } => request_too_large(limits),
        multer::Error::StreamReadFailed(inner) => match inner.downcast_ref::<BodyError>() {
            Some(BodyError::Stalled(after)) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_stalled",
                format!("the upload sent nothing for {} s and was cut off", after.as_secs()),
            ),
            _ => ApiError::bad_request(format!("the upload body could not be read: {inner}")),
        },
        other => ApiError::bad_request(format!("malformed multipart body: {other}")),
    }
}

#[utoipa::path(
    get, path = "/api/v1/activities/{id}/photos", tag = "photos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Activity id")),
    responses(
        (status = 200, description = "The activity's photos by position", body = PhotoListBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such activity, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
        (status = 504, description = "Deadline exceeded", body = ErrorBody),
    )
)]
pub(crate) async fn list_photos<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PhotoListBody>, ApiError> {
    let id: ActivityId = parse_id(&id)?;
    let photos = app.stride.photos.list(deadline, user.id, id).await?;
    Ok(Json(PhotoListBody { items: photos.iter().map(PhotoBody::from).collect() }))
}

pub(crate) async fn serve_photo<S: Store>(
    app: AppState<S>,
    deadline: stride_services::Deadline,
    viewer: stride_domain::UserId,
    id: &str,
    kind: PhotoKind,
    delivery: Delivery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id: PhotoId = parse_id(id)?;
    let photo = app.stride.photos.photo(deadline, viewer, id, kind).await?;
    let etag = photo.etag(kind);
    // Private: who may see a photo depends on the caller. A day's freshness, then revalidation
    // by ETag (re-processing changes the bytes, and with them the ETag).
    let cache = HeaderValue::from_static("private, max-age=86400");
    let etag_value =
        HeaderValue::from_str(&etag).map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    let matches = headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.trim_start_matches("W/") == etag
        },
    );
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag_value), (CACHE_CONTROL, cache)]).into_response());
    }
    let content_type = photo.rendition(kind).format.content_type();
    match app.stride.photos.serve(deadline, &photo, kind, delivery).await? {
        Served::Bytes(bytes) => Ok((
            StatusCode::OK,
            [
                (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (ETAG, etag_value),
                (CACHE_CONTROL, cache),
                (axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            bytes,
        )
            .into_response()),
        Served::Redirect(url) => {
            let location =
                HeaderValue::from_str(&url).map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
            Ok((StatusCode::FOUND, [(LOCATION, location), (CACHE_CONTROL, HeaderValue::from_static("no-store"))])
                .into_response())
        }
    }
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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such photo, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
        (status = 504, description = "Deadline exceeded", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_display<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, &id, PhotoKind::Display, Delivery::RedirectWhenPresigned, &headers).await
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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such photo, or not visible to the caller", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
        (status = 504, description = "Deadline exceeded", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_thumb<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, &id, PhotoKind::Thumb, Delivery::RedirectWhenPresigned, &headers).await
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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such photo, or not the caller's", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable", body = ErrorBody),
        (status = 504, description = "Deadline exceeded", body = ErrorBody),
    )
)]
pub(crate) async fn get_photo_original<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_photo(app, deadline, user.id, &id, PhotoKind::Original, Delivery::RedirectWhenPresigned, &headers).await
}

#[utoipa::path(
    delete, path = "/api/v1/photos/{id}", tag = "photos",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Photo id")),
    responses(
        (status = 204, description = "Deleted, with its stored files"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such photo, or not the caller's", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
        (status = 504, description = "Deadline exceeded", body = ErrorBody),
    )
)]
pub(crate) async fn delete_photo<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: PhotoId = parse_id(&id)?;
    app.stride.photos.delete(deadline, user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
