//! The photos a row of Strava's CSV names, through the photo pipeline: at most ten an
//! activity; each that cannot be attached is a warning of its item, never its failure.

use bytes::Bytes;
use stride_domain::{ActivityId, Photo, Problem};
use stride_repository::{BlobKey, Store};
use stride_tracks::Media;

use super::pipeline::Attempt;
use super::run::Stop;
use crate::ServiceError;

impl<S: Store> Attempt<S> {
    /// The row's photos through the photo pipeline, at most ten; each that cannot be attached
    /// is a warning of the item, never its failure.
    pub(super) async fn photos(
        &self,
        activity: ActivityId,
        media: &[Media],
        blobs: &mut Vec<BlobKey>,
    ) -> Result<(Vec<Photo>, Vec<Problem>), Stop> {
        let (mut photos, mut warnings) = (Vec::new(), Vec::new());
        for media in media {
            let (entry, name) = match media {
                Media::Missing(name) => {
                    warnings.push(Problem::new("missing_file", format!("{name} is not in the archive")));
                    continue;
                }
                Media::Unsafe(name) => {
                    warnings.push(Problem::new("unsafe_entry", format!("{name} is not read: its name is unsafe")));
                    continue;
                }
                Media::Entry { entry, name } => (*entry, name),
            };
            if photos.len() == super::MAX_PHOTOS_PER_ACTIVITY {
                let why = format!("{name}: an activity takes at most {} photos", super::MAX_PHOTOS_PER_ACTIVITY);
                warnings.push(Problem::new("too_many_photos", why));
                continue;
            }
            let (mut archive, cap) = (self.archive.clone(), self.service.photos.config().max_file_bytes);
            let read = tokio::task::spawn_blocking(move || archive.read_entry(entry, cap, &mut |_| Ok(())))
                .await
                .map_err(|e| ServiceError::Internal(format!("reading a photo: {e}")))?;
            let bytes = match read {
                Ok(bytes) => Bytes::from(bytes),
                Err(error) => {
                    warnings.push(Problem::new(error.code(), format!("{name}: {error}")));
                    continue;
                }
            };
            let owner = self.import.user_id;
            match self.service.photos.store_for_import(self.deadline, owner, activity, name, bytes).await {
                Ok((photo, keys)) => {
                    blobs.extend(keys);
                    photos.push(photo);
                }
                Err(error) => match photo_warning(name, &error) {
                    Some(warning) => warnings.push(warning),
                    None => return Err(Stop::Failed(error)),
                },
            }
        }
        Ok((photos, warnings))
    }
}

/// A photo's failure as the item's warning; `None` for failures worth retrying the import.
fn photo_warning(name: &str, error: &ServiceError) -> Option<Problem> {
    let code = match error {
        ServiceError::UnsupportedMedia(_) => "unsupported_photo",
        ServiceError::Invalid { .. } => "invalid_photo",
        ServiceError::TooLarge(_) => "too_large",
        ServiceError::QuotaExceeded(_) => "quota_exceeded",
        _ => return None,
    };
    Some(Problem::new(code, format!("{name}: {error}")))
}
