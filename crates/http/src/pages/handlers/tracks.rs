//! Imports, a track's GPX download, and privacy zones, as pages.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stride_domain::{ActivityId, ImportId, ZoneId};
use stride_services::{ServiceError, Store};

use crate::edge::{PathId, receive_import};
use crate::extract::RequestDeadline;
use crate::pages::views;
use crate::pages::{PageContext, PageError, PageId, page, see_other};
use crate::state::AppState;

use super::*;

pub(crate) async fn imports_page<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let recent = app.stride.imports.list(deadline, caller.user.id, None, 20).await?;
    Ok(page(&context, StatusCode::OK, views::imports(caller, &context.csrf, &recent, None)))
}

/// The import form's multipart post (its CSRF token in the query, like photos').
pub(crate) async fn upload_import<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<CsrfOnly>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    context.check_csrf(query.csrf.as_deref())?;
    let caller = context.user()?;
    let created = receive_import(&app, deadline, caller.user.id, &headers, body, None).await?;
    Ok(see_other(&format!("/imports/{}", created.import().id)))
}

#[derive(Deserialize)]
pub(crate) struct ItemsFrom {
    from: Option<u32>,
}

pub(crate) async fn import_page<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ImportId>,
    Query(query): Query<ItemsFrom>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let from = query.from.unwrap_or(0);
    let import = app.stride.imports.get(deadline, caller.user.id, id).await?;
    let items = app.stride.imports.items(deadline, caller.user.id, id, from, views::IMPORT_ITEMS_PER_PAGE).await?;
    Ok(page(&context, StatusCode::OK, views::import_detail(caller, &context.csrf, &import, &items, from)))
}

pub(crate) async fn cancel_import_page<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ImportId>,
    PageForm(_): PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.imports.cancel(deadline, caller.user.id, id).await?;
    Ok(see_other(&format!("/imports/{id}")))
}

pub(crate) async fn export_gpx_page<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ActivityId>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let gpx = app.stride.tracks.export_gpx(deadline, caller.user.id, id).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{id}.gpx\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/gpx+xml")), (CONTENT_DISPOSITION, disposition)], gpx)
        .into_response())
}

pub(crate) async fn privacy_page<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let zones = app.stride.tracks.zones(deadline, caller.user.id).await?;
    Ok(page(&context, StatusCode::OK, views::privacy(caller, &context.csrf, &zones, None)))
}

#[derive(Deserialize)]
pub(crate) struct ZoneForm {
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    radius_m: String,
}

pub(crate) async fn add_zone<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PageForm(form): PageForm<ZoneForm>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let number = |raw: &str| raw.trim().parse::<f64>().unwrap_or(f64::NAN);
    let added = app
        .stride
        .tracks
        .add_zone(deadline, caller.user.id, number(&form.lat), number(&form.lon), number(&form.radius_m))
        .await;
    let message = match added {
        Ok(_) => return Ok(see_other("/settings/privacy")),
        Err(ServiceError::Invalid { message, field }) => format!("{field}: {message}"),
        Err(ServiceError::Conflict { message, .. }) => message,
        Err(other) => return Err(other.into()),
    };
    let zones = app.stride.tracks.zones(deadline, caller.user.id).await?;
    let markup = views::privacy(caller, &context.csrf, &zones, Some(&message));
    Ok(page(&context, StatusCode::UNPROCESSABLE_ENTITY, markup))
}

pub(crate) async fn remove_zone<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    PathId(id, ..): PageId<ZoneId>,
    PageForm(_): PageForm<Confirmed>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    app.stride.tracks.delete_zone(deadline, caller.user.id, id).await?;
    Ok(see_other("/settings/privacy"))
}
