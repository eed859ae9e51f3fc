//! A multipart photo upload, streamed into the photo service; the API's upload route and the
//! web app's photo form both receive through here.
//!
//! The body is read as a stream and never trusted for its size: a `Content-Length` past the
//! limit is refused before a byte is read, and multer stops at the limits as the bytes arrive
//! (a chunked body has no length to check first). A body that sends nothing for
//! `stall_timeout` is cut off, so a slow-loris upload cannot hold its slot for the whole upload
//! deadline. Ownership is checked before the body is read.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use stride_domain::{ActivityId, UserId};
use stride_services::{Deadline, IdempotencyKey, Store, UploadAdmission, UploadFile, Uploaded};

use crate::ApiError;
use crate::state::{AppState, UploadLimits};

/// A multipart upload into the photo service, shared by the API and the web app's form: the
/// type and declared size are refused before a byte is read, the owner is checked before the
/// body is, and the files stream in under the upload limits.
pub(crate) async fn receive_upload<S: Store>(
    app: &AppState<S>,
    deadline: Deadline,
    owner: UserId,
    activity: ActivityId,
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
    app.stride.photos.check_upload(deadline, owner, activity).await?;
    // Held until the upload is answered: the slot, and the memory the files occupy.
    let mut admission = app.stride.photos.admit_upload(owner)?;
    let files = read_files(body, boundary, limits, &mut admission).await?;
    Ok(app.stride.photos.upload(deadline, owner, activity, files, key).await?)
}

pub(crate) fn multipart_boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: multipart/form-data with one part per file",
        ));
    }
    multer::parse_boundary(content_type)
        .map_err(|_| ApiError::bad_request("the multipart Content-Type has no boundary".to_owned()))
}

pub(crate) fn request_too_large(limits: UploadLimits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the upload is larger than {} bytes", limits.max_request_bytes),
    )
}

/// Why the body stream ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("the body sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("reading the body failed: {0}")]
    Read(String),
}

/// The body's chunks, ending with `Stalled` if none arrives within `stall`.
pub(super) fn stall_guarded(body: Body, stall: Duration) -> impl Stream<Item = Result<Bytes, BodyError>> {
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

/// A multipart form as read: its files, and its short text fields by name.
pub(crate) struct ReceivedForm {
    pub(crate) files: Vec<UploadFile>,
    pub(crate) fields: Vec<(String, String)>,
}

/// Every `photo` part, each checked against the limits as it streams in, its bytes held in the
/// upload memory budget before they are kept.
async fn read_files(
    body: Body,
    boundary: String,
    limits: UploadLimits,
    admission: &mut UploadAdmission,
) -> Result<Vec<UploadFile>, ApiError> {
    Ok(read_form(body, boundary, limits, admission, "photo", &[]).await?.files)
}

/// Every `file_part` part (each checked against the limits as it streams in, its bytes held
/// in the upload memory budget before they are kept) and the text fields named in `fields`
/// (at most 64 bytes each); any other part is refused.
pub(crate) async fn read_form(
    body: Body,
    boundary: String,
    limits: UploadLimits,
    admission: &mut UploadAdmission,
    file_part: &'static str,
    fields: &[&'static str],
) -> Result<ReceivedForm, ApiError> {
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_request_bytes).per_field(limits.max_file_bytes));
    let mut multipart =
        multer::Multipart::with_constraints(stall_guarded(body, limits.stall_timeout), boundary, constraints);
    let mut form = ReceivedForm { files: Vec::new(), fields: Vec::new() };
    // The capacity of the files already read, which they keep.
    let mut kept = 0u64;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, limits, None))? {
        let name = field.name().unwrap_or("(unnamed)").to_owned();
        if let Some(&text_field) = fields.iter().find(|&&f| f == name) {
            let value = field.text().await.map_err(|e| multipart_error(e, limits, None))?;
            if value.len() > 64 {
                return Err(ApiError::invalid(text_field, "must be at most 64 bytes"));
            }
            form.fields.push((name, value));
            continue;
        }
        if name != file_part {
            return Err(ApiError::invalid(
                file_part,
                format!("unexpected form field {name:?}; send each file as `{file_part}`"),
            ));
        }
        if form.files.len() == limits.max_files {
            return Err(ApiError::invalid(file_part, format!("at most {} files per upload", limits.max_files)));
        }
        let name = field.file_name().map_or_else(|| format!("{file_part} #{}", form.files.len() + 1), str::to_owned);
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limits, Some(&name)))? {
            append_held(&mut bytes, &chunk, kept, admission).await?;
        }
        kept += bytes.capacity() as u64;
        form.files.push(UploadFile { name, bytes: Bytes::from(bytes) });
    }
    if form.files.is_empty() {
        return Err(ApiError::invalid(file_part, format!("at least one file is required, as a `{file_part}` part")));
    }
    Ok(form)
}

/// Appends `chunk` to a file's buffer, its growth held in the upload memory budget first (`kept`
/// is what the files already read hold).
pub(super) async fn append_held(
    bytes: &mut Vec<u8>,
    chunk: &[u8],
    kept: u64,
    admission: &mut UploadAdmission,
) -> Result<(), ApiError> {
    let needed = bytes.len() + chunk.len();
    if needed > bytes.capacity() {
        // Growing moves the buffer: the old and the new one exist at once, and both are held in
        // the budget before either is allocated.
        let grown = needed.max(bytes.capacity() * 2);
        admission.hold(kept + (bytes.capacity() + grown) as u64).await?;
        bytes.reserve_exact(grown - bytes.len());
    }
    bytes.extend_from_slice(chunk);
    Ok(())
}

pub(super) fn multipart_error(error: multer::Error, limits: UploadLimits, file: Option<&str>) -> ApiError {
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
