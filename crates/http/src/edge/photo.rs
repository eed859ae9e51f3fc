//! One rendition of a photo, for the API and the web app alike: the service decides who may
//! see it; this adds the ETag, the cache headers and `304 Not Modified`.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use stride_domain::{PhotoId, PhotoKind, UserId};
use stride_services::{Deadline, Delivery, Served, Store};

use crate::ApiError;
use crate::state::AppState;

/// The rendition `kind` of photo `id` as `viewer` may see it.
pub(crate) async fn serve_photo<S: Store>(
    app: AppState<S>,
    deadline: Deadline,
    viewer: UserId,
    id: PhotoId,
    kind: PhotoKind,
    delivery: Delivery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let photo = app.stride.photos.photo(deadline, viewer, id, kind).await?;
    let etag = photo.etag(kind);
    // Private: who may see a photo depends on the caller. And no freshness at all: every reuse
    // asks first, and the question is answered only after the visibility check above, so a
    // cached copy never outlives a block or a visibility change; an unchanged photo still costs
    // only a 304 (re-processing changes the bytes, and with them the ETag).
    let cache = HeaderValue::from_static("private, no-cache");
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
