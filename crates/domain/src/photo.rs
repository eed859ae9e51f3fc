//! Photos attached to activities: what is stored about each, and where its bytes live.
//!
//! A photo has three blobs: the original exactly as uploaded (private to the owner), the
//! display rendition and the thumbnail. Blob names derive from the id, the kind and the
//! format alone, so a row is enough to find, serve or delete every byte of its photo, and a
//! blob whose id has no row is garbage (`stride photos gc`).

use chrono::{DateTime, Utc};

use crate::{ActivityId, PhotoId, UserId};

/// The encodings Stride accepts and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "jpeg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            "webp" => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
        }
    }
}

/// Which of a photo's three blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoKind {
    Original,
    Display,
    Thumb,
}

impl PhotoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoKind::Original => "original",
            PhotoKind::Display => "display",
            PhotoKind::Thumb => "thumb",
        }
    }
}

/// One stored encoding of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    pub id: PhotoId,
    pub activity_id: ActivityId,
    pub user_id: UserId,
    /// From 0 within the activity, in upload order; gaps stay after a delete.
    pub position: u32,
    /// The original's size after its EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
    pub original: Rendition,
    pub display: Rendition,
    pub thumb: Rendition,
    /// SHA-256 of the original bytes.
    pub sha256: [u8; 32],
    /// The version of the processing code that made `display` and `thumb`; re-processing
    /// skips photos already at the current one.
    pub processing_version: u32,
    pub created_at: DateTime<Utc>,
}

impl Photo {
    pub fn rendition(&self, kind: PhotoKind) -> Rendition {
        match kind {
            PhotoKind::Original => self.original,
            PhotoKind::Display => self.display,
            PhotoKind::Thumb => self.thumb,
        }
    }

    /// Where the blob of `kind` lives: `photos/<id>/original.<ext>`, or
    /// `photos/<id>/<kind>-v<version>.<ext>` for the renditions.
    pub fn blob_name(&self, kind: PhotoKind) -> String {
        blob_name(self.id, kind, self.rendition(kind).format, self.processing_version)
    }

    /// A validator for HTTP caching: the bytes of one kind change only with the processing
    /// version (originals never change).
    pub fn etag(&self, kind: PhotoKind) -> String {
        match kind {
            PhotoKind::Original => format!("\"{}-original\"", self.id.as_uuid().simple()),
            _ => format!("\"{}-{}-v{}\"", self.id.as_uuid().simple(), kind.as_str(), self.processing_version),
        }
    }
}

/// Renditions carry their processing version in the name, so re-processing writes new blobs
/// beside the old ones and switches the row over in one commit: a photo is always wholly old
/// or wholly new, whenever a run stops.
pub fn blob_name(id: PhotoId, kind: PhotoKind, format: ImageFormat, processing_version: u32) -> String {
    let id = id.as_uuid().simple();
    match kind {
        PhotoKind::Original => format!("photos/{id}/original.{}", format.extension()),
        _ => format!("photos/{id}/{}-v{processing_version}.{}", kind.as_str(), format.extension()),
    }
}

/// When an id was minted (UUIDv7 carries its millisecond timestamp): garbage collection leaves
/// the blobs of recently minted ids alone, because their upload may still be running.
pub fn minted_at_ms(id: PhotoId) -> Option<u64> {
    let (seconds, nanos) = id.as_uuid().get_timestamp()?.to_unix();
    Some(seconds * 1000 + u64::from(nanos) / 1_000_000)
}

/// The photo id a blob name belongs to, if it is a photo blob at all.
pub fn photo_of_blob(name: &str) -> Option<PhotoId> {
    let rest = name.strip_prefix("photos/")?;
    let (id, _) = rest.split_once('/')?;
    uuid::Uuid::try_parse(id).ok().map(PhotoId::from_uuid)
}

/// The position the next photo of an activity takes: one past the highest, so positions stay
/// in upload order even after deletes.
pub fn next_position(highest: Option<u32>) -> u32 {
    highest.map_or(0, |p| p.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_round_trip_to_their_photo() {
        let id = PhotoId::new();
        let name = blob_name(id, PhotoKind::Display, ImageFormat::Jpeg, 3);
        assert!(name.ends_with("/display-v3.jpg"), "{name}");
        assert!(blob_name(id, PhotoKind::Original, ImageFormat::Png, 3).ends_with("/original.png"));
        assert_eq!(photo_of_blob(&name), Some(id));
        assert_eq!(photo_of_blob("photos/not-an-id/display.jpg"), None);
        assert_eq!(photo_of_blob("other/x"), None);
    }

    #[test]
    fn positions_continue_after_the_highest() {
        assert_eq!(next_position(None), 0);
        assert_eq!(next_position(Some(4)), 5);
    }

    #[test]
    fn formats_round_trip() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp] {
            assert_eq!(ImageFormat::parse(format.as_str()), Some(format));
        }
        assert_eq!(ImageFormat::parse("gif"), None);
    }
}
