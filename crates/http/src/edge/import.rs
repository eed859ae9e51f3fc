//! A multipart import of track files, shared by the API's `POST /api/v1/imports` and the web
//! app's import form: the declared size is refused before a byte is read, a user with too
//! many imports under way before the body is, and the files stream in under the upload
//! limits and the upload memory budget, exactly as photos do.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use stride_domain::{Sport, UserId, Visibility};
use stride_services::{Deadline, IdempotencyKey, ImportCreated, ImportFile, ImportOptions, Store};

use super::upload::{multipart_boundary, read_form, request_too_large};
use crate::ApiError;
use crate::state::{AppState, UploadLimits};

/// The limits of one import request: the photo upload's sizes, with the import's file count.
pub(crate) fn import_limits<S: Store>(app: &AppState<S>) -> UploadLimits {
    UploadLimits { max_files: app.stride.imports.config().max_files, ..app.uploads }
}

pub(crate) async fn receive_import<S: Store>(
    app: &AppState<S>,
    deadline: Deadline,
    owner: UserId,
    headers: &HeaderMap,
    body: Body,
    key: Option<IdempotencyKey>,
) -> Result<ImportCreated, ApiError> {
    let limits = import_limits(app);
    let boundary = multipart_boundary(headers)?;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_request_bytes) {
        return Err(request_too_large(limits));
    }
    let replayed = match &key {
        Some(key) => app.stride.imports.replay(deadline, owner, key).await?,
        None => None,
    };
    if replayed.is_none() {
        app.stride.imports.check_room(deadline, owner).await?;
    }
    let mut admission = app.stride.photos.admit_upload(owner)?;
    let form = read_form(body, boundary, limits, &mut admission, "file", &["sport", "visibility"]).await?;
    if let Some(first) = replayed {
        return Ok(ImportCreated::Replayed(first));
    }
    let mut options = ImportOptions::default();
    for (name, value) in &form.fields {
        match name.as_str() {
            "sport" => {
                let sport = value.parse::<Sport>().map_err(|e| ApiError::invalid("sport", e))?;
                options.sport = Some(sport);
            }
            _ => options.visibility = value.parse::<Visibility>().map_err(|e| ApiError::invalid("visibility", e))?,
        }
    }
    let files = form.files.into_iter().map(|f| ImportFile { name: f.name, bytes: f.bytes }).collect();
    Ok(app.stride.imports.create(deadline, owner, files, options, key).await?)
}
