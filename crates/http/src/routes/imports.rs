//! Imports of track files: `POST/GET /api/v1/imports`, `GET /api/v1/imports/{id}`,
//! `GET /api/v1/imports/{id}/items`, `POST /api/v1/imports/{id}/cancel`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stride_domain::{Cursor, ImportId, ListCursor};
use stride_services::{Caller, Store};
use utoipa::ToSchema;

use super::page_limit;
use crate::ApiError;
use crate::dto::{ImportBody, ImportItemBody, ListActivitiesQuery, PageBody};
use crate::edge::{PathId, receive_import};
use crate::error::ErrorBody;
use crate::extract::{ApiQuery, AuthUser, RequestDeadline, idempotency_key};
use crate::state::AppState;

/// The multipart form of an import.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportForm {
    /// 1–20 parts: GPX 1.0/1.1, TCX or FIT files, each possibly gzipped (recognised from the
    /// bytes), at most 25 MiB each as sent; or exactly one zip archive (watch files, or
    /// Strava's export whole) of at most `STRIDE_IMPORT_MAX_ARCHIVE_BYTES` (1 GiB).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// For files that name no sport: `run`, `ride`, `swim`, `walk`, `hike` or `other`.
    sport: Option<String>,
    /// `private`, `friends` (default) or `public`.
    visibility: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/imports", tag = "imports",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The same key within 24 hours answers the first import and imports nothing again")),
    request_body(content = ImportForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Stored and queued; poll the import or its items", body = ImportBody),
        (status = 400, description = "Malformed multipart body", body = ErrorBody),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 413, description = "A part over 25 MiB as sent, a request of files over 100 MiB, or an archive over STRIDE_IMPORT_MAX_ARCHIVE_BYTES", body = ErrorBody),
        (status = 415, description = "Not multipart, or a part that is none of GPX, TCX and FIT (named)", body = ErrorBody),
        (status = 422, description = "No file part, more than 20, an archive beside other files, or a bad sport or visibility", body = ErrorBody),
        (status = 429, description = "3 imports of this user are queued or running; see Retry-After", body = ErrorBody),
        (status = 503, description = "Storage or database unavailable; nothing was stored", body = ErrorBody),
    )
)]
pub(crate) async fn create_import<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportBody>), ApiError> {
    let key = idempotency_key(&headers)?;
    let created = receive_import(&app, deadline, user.id, &headers, body, key).await?;
    Ok((StatusCode::ACCEPTED, Json(ImportBody::from(created.import()))))
}

#[utoipa::path(
    get, path = "/api/v1/imports", tag = "imports",
    security(("bearer" = [])),
    params(ListActivitiesQuery),
    responses(
        (status = 200, description = "The caller's imports, newest first", body = PageBody<ImportBody>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_imports<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    ApiQuery(query): ApiQuery<ListActivitiesQuery>,
) -> Result<Json<PageBody<ImportBody>>, ApiError> {
    let limit = page_limit(query.limit.as_deref(), 20)?;
    let after =
        query.cursor.as_deref().map(ListCursor::decode).transpose().map_err(|e| ApiError::invalid("cursor", e))?;
    let after = after
        .map(|c| chrono::DateTime::from_timestamp_micros(c.at_utc_micros).map(|at| (at, ImportId::from_uuid(c.id))))
        .map(|c| c.ok_or_else(|| ApiError::invalid("cursor", "out of range")))
        .transpose()?;
    let mut imports = app.stride.imports.list(deadline, user.id, after, limit + 1).await?;
    let next_cursor = (imports.len() > limit as usize).then(|| {
        imports.truncate(limit as usize);
        let last = &imports[imports.len() - 1];
        ListCursor { at_utc_micros: last.created_at.timestamp_micros(), id: last.id.as_uuid() }.encode()
    });
    Ok(Json(PageBody { items: imports.iter().map(ImportBody::from).collect(), next_cursor }))
}

#[utoipa::path(
    get, path = "/api/v1/imports/{id}", tag = "imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Import id")),
    responses(
        (status = 200, description = "The import", body = ImportBody),
        (status = 404, description = "No such import, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_import<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ImportId>,
) -> Result<Json<ImportBody>, ApiError> {
    Ok(Json(ImportBody::from(&app.stride.imports.get(deadline, user.id, id).await?)))
}

#[utoipa::path(
    get, path = "/api/v1/imports/{id}/items", tag = "imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Import id"), ListActivitiesQuery),
    responses(
        (status = 200, description = "The import's files in upload order", body = PageBody<ImportItemBody>),
        (status = 404, description = "No such import, or not the caller's", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    )
)]
pub(crate) async fn list_import_items<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ImportId>,
    ApiQuery(query): ApiQuery<ListActivitiesQuery>,
) -> Result<Json<PageBody<ImportItemBody>>, ApiError> {
    let limit = page_limit(query.limit.as_deref(), 50)?;
    let from = match query.cursor.as_deref() {
        None => 0,
        Some(raw) => {
            let cursor = ListCursor::decode(raw).map_err(|e| ApiError::invalid("cursor", e))?;
            if cursor.id != id.as_uuid() {
                return Err(ApiError::invalid("cursor", "belongs to another import"));
            }
            u32::try_from(cursor.at_utc_micros).map_err(|_| ApiError::invalid("cursor", "out of range"))?
        }
    };
    let mut items = app.stride.imports.items(deadline, user.id, id, from, limit + 1).await?;
    let next_cursor = (items.len() > limit as usize).then(|| {
        items.truncate(limit as usize);
        let next = items[items.len() - 1].index + 1;
        ListCursor { at_utc_micros: i64::from(next), id: id.as_uuid() }.encode()
    });
    Ok(Json(PageBody { items: items.iter().map(ImportItemBody::from).collect(), next_cursor }))
}

#[utoipa::path(
    post, path = "/api/v1/imports/{id}/cancel", tag = "imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Import id")),
    responses(
        (status = 200, description = "The import: items not yet started are cancelled, imported ones stay; \
            a finished import is unchanged", body = ImportBody),
        (status = 404, description = "No such import, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_import<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    AuthUser(Caller { user, .. }): AuthUser,
    PathId(id, ..): PathId<ImportId>,
) -> Result<Json<ImportBody>, ApiError> {
    Ok(Json(ImportBody::from(&app.stride.imports.cancel(deadline, user.id, id).await?)))
}
