//! A multipart import, shared by the API's `POST /api/v1/imports` and the web app's import
//! form: track files, or exactly one zip archive.
//!
//! The declared size is refused before a byte is read, and a user with too many imports under
//! way before the body is. Track files stream into memory under the photo upload limits and
//! memory budget, exactly as photos do. A zip (recognised from its first bytes) streams to a
//! spool file on disk as it arrives — never into memory, outside the memory budget, up to
//! `STRIDE_IMPORT_MAX_ARCHIVE_BYTES` — under the stall timeout only: a gigabyte on a slow link
//! may take as long as it needs while it keeps moving.

use std::path::Path;

use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use stride_domain::{Sport, UserId, Visibility};
use stride_services::{Deadline, IdempotencyKey, ImportCreated, ImportFile, ImportOptions, Store, UploadAdmission};
use tokio::io::AsyncWriteExt;

use super::upload::{append_held, multipart_boundary, multipart_error, request_too_large, stall_guarded};
use crate::ApiError;
use crate::state::{AppState, UploadLimits};

/// Room for the form's other parts and boundaries around an archive of the largest size.
const FORM_SLACK: u64 = 64 * 1024;

/// The import routes' request deadline: none to speak of, since a body may take as long as it
/// keeps moving (the stall timeout cuts off one that stops). The work before and after the
/// body has its own deadline, [`PHASE`].
pub(crate) const BODY_WITHOUT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The checks before the body, and storing the files and the commit after it (an archive of
/// a gigabyte to S3 included).
const PHASE: std::time::Duration = std::time::Duration::from_secs(600);

/// The limits of one import request: the photo upload's sizes, with the import's file count.
pub(crate) fn import_limits<S: Store>(app: &AppState<S>) -> UploadLimits {
    UploadLimits { max_files: app.stride.imports.config().max_files, ..app.uploads }
}

/// What the form carried.
enum Upload {
    Files(Vec<ImportFile>),
    /// The archive, spooled; the file is removed when this is dropped.
    Archive(tempfile::TempPath),
}

pub(crate) async fn receive_import<S: Store>(
    app: &AppState<S>,
    deadline: Deadline,
    owner: UserId,
    headers: &HeaderMap,
    body: Body,
    key: Option<IdempotencyKey>,
) -> Result<ImportCreated, ApiError> {
    let deadline = deadline.tightened_by(PHASE);
    let limits = import_limits(app);
    let config = app.stride.imports.config();
    let largest = limits.max_request_bytes.max(config.max_archive_bytes + FORM_SLACK);
    let boundary = multipart_boundary(headers)?;
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > largest) {
        return Err(archive_too_large(config.max_archive_bytes));
    }
    let replayed = match &key {
        Some(key) => app.stride.imports.replay(deadline, owner, key).await?,
        None => None,
    };
    if replayed.is_none() {
        app.stride.imports.check_room(deadline, owner).await?;
    }
    let mut admission = app.stride.photos.admit_upload(owner)?;
    let form = FormLimits { files: limits, archive_bytes: config.max_archive_bytes, largest };
    let (upload, options) = read_import_form(body, boundary, form, &mut admission, &config.spool_dir).await?;
    if let Some(first) = replayed {
        return Ok(ImportCreated::Replayed(first));
    }
    // The body is in: what follows (storing, one commit) gets a deadline of its own, however
    // long the body took.
    let deadline = Deadline::after(PHASE);
    Ok(match upload {
        Upload::Files(files) => app.stride.imports.create(deadline, owner, files, options, key).await?,
        Upload::Archive(spooled) => app.stride.imports.create_archive(deadline, owner, &spooled, options, key).await?,
    })
}

fn archive_too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the archive is larger than {max} bytes (STRIDE_IMPORT_MAX_ARCHIVE_BYTES)"),
    )
}

#[derive(Clone, Copy)]
struct FormLimits {
    files: UploadLimits,
    archive_bytes: u64,
    /// The whole body's limit: the larger of a track files' request and an archive's.
    largest: u64,
}

async fn read_import_form(
    body: Body,
    boundary: String,
    limits: FormLimits,
    admission: &mut UploadAdmission,
    spool_dir: &Path,
) -> Result<(Upload, ImportOptions), ApiError> {
    let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limits.largest));
    let stream = stall_guarded(body, limits.files.stall_timeout);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let (mut files, mut archive, mut options) = (Vec::new(), None, ImportOptions::default());
    // The capacity of the files already read, which they keep; and their bytes.
    let (mut kept, mut in_memory) = (0u64, 0u64);
    let form_error = |error| multipart_error(error, limits.files, None);
    while let Some(mut field) = multipart.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or("(unnamed)").to_owned();
        match name.as_str() {
            "sport" | "visibility" => {
                let value = field.text().await.map_err(form_error)?;
                if value.len() > 64 {
                    return Err(ApiError::invalid("file", format!("{name} must be at most 64 bytes")));
                }
                if name == "sport" {
                    options.sport = Some(value.parse::<Sport>().map_err(|e| ApiError::invalid("sport", e))?);
                } else {
                    options.visibility = value.parse::<Visibility>().map_err(|e| ApiError::invalid("visibility", e))?;
                }
                continue;
            }
            "file" => {}
            _ => {
                return Err(ApiError::invalid(
                    "file",
                    format!("unexpected form field {name:?}; send each file as `file`"),
                ));
            }
        }
        let file_name = field.file_name().map_or_else(|| format!("file #{}", files.len() + 1), str::to_owned);
        if archive.is_some() {
            return Err(ApiError::invalid("file", "an archive must be the only `file` part"));
        }
        // The first bytes say whether it is a zip.
        let mut head: Vec<u8> = Vec::new();
        while head.len() < 4 {
            match field.chunk().await.map_err(form_error)? {
                Some(chunk) => head.extend_from_slice(&chunk),
                None => break,
            }
        }
        if stride_services::is_zip(&head) {
            if !files.is_empty() {
                return Err(ApiError::invalid("file", "an archive must be the only `file` part"));
            }
            archive = Some(spool(&mut field, Bytes::from(head), limits, spool_dir).await?);
            continue;
        }
        if files.len() == limits.files.max_files {
            return Err(ApiError::invalid("file", format!("at most {} files per import", limits.files.max_files)));
        }
        let mut bytes = head;
        admission.hold(kept + bytes.capacity() as u64).await?;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limits.files, Some(&file_name)))? {
            let needed = bytes.len() + chunk.len();
            if needed as u64 > limits.files.max_file_bytes {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("{file_name}: larger than {} bytes", limits.files.max_file_bytes),
                ));
            }
            if in_memory + needed as u64 > limits.files.max_request_bytes {
                return Err(request_too_large(limits.files));
            }
            append_held(&mut bytes, &chunk, kept, admission).await?;
        }
        kept += bytes.capacity() as u64;
        in_memory += bytes.len() as u64;
        files.push(ImportFile { name: file_name, bytes: Bytes::from(bytes) });
    }
    match archive {
        Some(spooled) => Ok((Upload::Archive(spooled), options)),
        None if files.is_empty() => Err(ApiError::invalid("file", "at least one file is required, as a `file` part")),
        None => Ok((Upload::Files(files), options)),
    }
}

/// Writes the archive part to a spool file as its chunks arrive, refusing it past `max`.
async fn spool(
    field: &mut multer::Field<'_>,
    head: Bytes,
    limits: FormLimits,
    spool_dir: &Path,
) -> Result<tempfile::TempPath, ApiError> {
    let max = limits.archive_bytes;
    let unavailable = |e: std::io::Error| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("the archive could not be spooled: {e}"))
    };
    tokio::fs::create_dir_all(spool_dir).await.map_err(unavailable)?;
    let path = tempfile::NamedTempFile::new_in(spool_dir).map_err(unavailable)?.into_temp_path();
    let mut file = tokio::fs::File::create(&path).await.map_err(unavailable)?;
    let mut written = head.len() as u64;
    file.write_all(&head).await.map_err(unavailable)?;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(multer::Error::StreamSizeExceeded { .. }) => return Err(archive_too_large(max)),
            Err(other) => return Err(multipart_error(other, limits.files, Some("the archive"))),
        };
        written += chunk.len() as u64;
        if written > max {
            return Err(archive_too_large(max));
        }
        file.write_all(&chunk).await.map_err(unavailable)?;
    }
    file.flush().await.map_err(unavailable)?;
    Ok(path)
}
