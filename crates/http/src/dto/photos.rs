//! The shapes of photos in the API.

use super::*;

/// One stored version of a photo.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenditionBody {
    /// Where the bytes are served (bearer token required, like the rest of the API).
    #[schema(example = "/api/v1/photos/0190b5a2-7c1e-7000-8000-000000000000/display")]
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// Size of the encoded file.
    pub bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoBody {
    pub id: String,
    pub activity_id: String,
    /// From 0 within the activity, in upload order.
    pub position: u32,
    /// The original's size after its EXIF orientation is applied.
    pub width: u32,
    pub height: u32,
    pub created_at: String,
    /// Long side at most 2048 px; JPEG, or PNG when the photo has transparency.
    pub display: RenditionBody,
    /// Long side at most 320 px, made from the display version.
    pub thumb: RenditionBody,
}

impl From<&Photo> for PhotoBody {
    fn from(p: &Photo) -> Self {
        let rendition = |kind: PhotoKind| {
            let r = p.rendition(kind);
            RenditionBody {
                url: format!("/api/v1/photos/{}/{}", p.id, kind.as_str()),
                width: r.width,
                height: r.height,
                bytes: r.bytes,
            }
        };
        Self {
            id: p.id.to_string(),
            activity_id: p.activity_id.to_string(),
            position: p.position,
            width: p.width,
            height: p.height,
            created_at: p.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            display: rendition(PhotoKind::Display),
            thumb: rendition(PhotoKind::Thumb),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoListBody {
    pub items: Vec<PhotoBody>,
}

/// `multipart/form-data`: one part named `photo` per file.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PhotoUploadForm {
    /// 1–10 JPEG, PNG or WebP files, each at most 25 MiB.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub photo: Vec<Vec<u8>>,
}

/// The bytes of an image (JPEG, or PNG for transparency; originals may also be WebP).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);
