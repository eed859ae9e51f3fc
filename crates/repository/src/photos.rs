//! Photos: one row per photo whose three blobs are all stored, the activity's `photo_count`
//! kept in the same transaction, and the idempotency keys of uploads.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{ActivityId, ImageFormat, Photo, PhotoId, Rendition, UserId};

use crate::codec::{corrupt, from_micros, micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::{IdempotencyScope, RepoError, RepoResult, SqlxUnitOfWork};

/// Which photos a re-processing run looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoSelection {
    All,
    User(UserId),
    Activity(ActivityId),
}

/// What the first upload with an idempotency key made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoUploadRecord {
    /// A digest of the files' names, sizes and SHA-256s.
    pub fingerprint: Vec<u8>,
    pub activity_id: ActivityId,
    pub photo_ids: Vec<PhotoId>,
}

pub trait PhotoRepo {
    /// Inserts the photo and counts it on its activity.
    fn insert_photo(&mut self, photo: &Photo) -> impl Future<Output = RepoResult<()>> + Send;
    fn photo_by_id(&mut self, id: PhotoId) -> impl Future<Output = RepoResult<Option<Photo>>> + Send;
    /// An activity's photos by position.
    fn photos_of_activity(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Vec<Photo>>> + Send;
    /// The position the next photo of the activity takes (one past the highest, 0 for none).
    fn next_photo_position(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<u32>> + Send;
    /// Deletes the photo and uncounts it; whether a row was removed.
    fn delete_photo(&mut self, photo: &Photo) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Up to `limit` photos in `selection` made by a processing version other than `current`,
    /// by id, after `after`.
    fn photos_to_reprocess(
        &mut self,
        selection: PhotoSelection,
        current: u32,
        after: Option<PhotoId>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Photo>>> + Send;
    /// The bytes `user`'s photos take in the blob store (every rendition).
    fn storage_used(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
    /// How many photos of `selection` there are, and how many are at version `current`.
    fn count_photos(
        &mut self,
        selection: PhotoSelection,
        current: u32,
    ) -> impl Future<Output = RepoResult<(u64, u64)>> + Send;
    /// Switches a photo to new renditions, only if it is still at `from_version` (a concurrent
    /// run or a delete wins otherwise); whether it was switched.
    fn replace_renditions(&mut self, photo: &Photo, from_version: u32)
    -> impl Future<Output = RepoResult<bool>> + Send;
    fn find_photo_upload_key(
        &mut self,
        scope: IdempotencyScope<'_>,
    ) -> impl Future<Output = RepoResult<Option<PhotoUploadRecord>>> + Send;
    /// `Conflict` if a live record exists (a concurrent upload with the same key committed).
    fn record_photo_upload_key(
        &mut self,
        scope: IdempotencyScope<'_>,
        record: &PhotoUploadRecord,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
}

macro_rules! photo_columns {
    () => {
        "id, activity_id, user_id, position, width, height, original_format, original_bytes, \
         display_format, display_width, display_height, display_bytes, \
         thumb_format, thumb_width, thumb_height, thumb_bytes, sha256, processing_version, created_at_us"
    };
}

fn unsigned(what: &str, value: i32) -> RepoResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(what, value))
}

fn size(what: &str, value: i64) -> RepoResult<u64> {
    u64::try_from(value).map_err(|_| corrupt(what, value))
}

fn format(what: &str, raw: String) -> RepoResult<ImageFormat> {
    ImageFormat::parse(&raw).ok_or_else(|| corrupt(what, raw))
}

fn decode_photo<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Photo> {
    let id = PhotoId::from_uuid(cols.uuid()?);
    let activity_id = ActivityId::from_uuid(cols.uuid()?);
    let user_id = UserId::from_uuid(cols.uuid()?);
    let position = unsigned("position", cols.int()?)?;
    let width = unsigned("width", cols.int()?)?;
    let height = unsigned("height", cols.int()?)?;
    let original_format = format("original_format", cols.text()?)?;
    let original_bytes = size("original_bytes", cols.big_int()?)?;
    let mut rendition = |what: &str| -> RepoResult<Rendition> {
        Ok(Rendition {
            format: format(what, cols.text()?)?,
            width: unsigned(what, cols.int()?)?,
            height: unsigned(what, cols.int()?)?,
            bytes: size(what, cols.big_int()?)?,
        })
    };
    let display = rendition("display")?;
    let thumb = rendition("thumb")?;
    let sha256 = cols.bytes()?;
    let sha256: [u8; 32] = sha256.as_slice().try_into().map_err(|_| corrupt("sha256", sha256.len()))?;
    Ok(Photo {
        id,
        activity_id,
        user_id,
        position,
        width,
        height,
        original: Rendition { format: original_format, width, height, bytes: original_bytes },
        display,
        thumb,
        sha256,
        processing_version: unsigned("processing_version", cols.int()?)?,
        created_at: from_micros(cols.big_int()?)?,
    })
}

fn int(value: u32) -> Param<'static> {
    Param::Int(i32::try_from(value).unwrap_or(i32::MAX))
}

fn big(value: u64) -> Param<'static> {
    Param::BigInt(i64::try_from(value).unwrap_or(i64::MAX))
}

impl<DB: Dialect> PhotoRepo for SqlxUnitOfWork<DB> {
    async fn insert_photo(&mut self, photo: &Photo) -> RepoResult<()> {
        const SQL: &str = concat!(
            "INSERT INTO photos (",
            photo_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        );
        self.execute(
            SQL,
            &[
                Param::Uuid(photo.id.as_uuid()),
                Param::Uuid(photo.activity_id.as_uuid()),
                Param::Uuid(photo.user_id.as_uuid()),
                int(photo.position),
                int(photo.width),
                int(photo.height),
                Param::Text(photo.original.format.as_str()),
                big(photo.original.bytes),
                Param::Text(photo.display.format.as_str()),
                int(photo.display.width),
                int(photo.display.height),
                big(photo.display.bytes),
                Param::Text(photo.thumb.format.as_str()),
                int(photo.thumb.width),
                int(photo.thumb.height),
                big(photo.thumb.bytes),
                Param::Bytes(&photo.sha256),
                int(photo.processing_version),
                micros(photo.created_at),
            ],
        )
        .await?;
        let counted = self
            .execute(
                "UPDATE activities SET photo_count = photo_count + 1 WHERE id = $1",
                &[Param::Uuid(photo.activity_id.as_uuid())],
            )
            .await?;
        if counted == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn photo_by_id(&mut self, id: PhotoId) -> RepoResult<Option<Photo>> {
        const SQL: &str = concat!("SELECT ", photo_columns!(), " FROM photos WHERE id = $1");
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_photo).await
    }

    async fn photos_of_activity(&mut self, activity: ActivityId) -> RepoResult<Vec<Photo>> {
        const SQL: &str = concat!("SELECT ", photo_columns!(), " FROM photos WHERE activity_id = $1 ORDER BY position");
        self.fetch_all(SQL, &[Param::Uuid(activity.as_uuid())], decode_photo).await
    }

    async fn next_photo_position(&mut self, activity: ActivityId) -> RepoResult<u32> {
        let next = self
            .fetch_one(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM photos WHERE activity_id = $1",
                &[Param::Uuid(activity.as_uuid())],
                |cols| Ok(cols.int()?),
            )
            .await?;
        unsigned("next position", next)
    }

    async fn delete_photo(&mut self, photo: &Photo) -> RepoResult<bool> {
        let removed = self.execute("DELETE FROM photos WHERE id = $1", &[Param::Uuid(photo.id.as_uuid())]).await?;
        if removed > 0 {
            self.execute(
                "UPDATE activities SET photo_count = photo_count - 1 WHERE id = $1 AND photo_count > 0",
                &[Param::Uuid(photo.activity_id.as_uuid())],
            )
            .await?;
        }
        Ok(removed > 0)
    }

    async fn photos_to_reprocess(
        &mut self,
        selection: PhotoSelection,
        current: u32,
        after: Option<PhotoId>,
        limit: u32,
    ) -> RepoResult<Vec<Photo>> {
        const ALL: &str = concat!(
            "SELECT ",
            photo_columns!(),
            " FROM photos WHERE processing_version <> $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        const BY_USER: &str = concat!(
            "SELECT ",
            photo_columns!(),
            " FROM photos WHERE processing_version <> $1 AND id > $2 AND user_id = $4 ORDER BY id LIMIT $3"
        );
        const BY_ACTIVITY: &str = concat!(
            "SELECT ",
            photo_columns!(),
            " FROM photos WHERE processing_version <> $1 AND id > $2 AND activity_id = $4 ORDER BY id LIMIT $3"
        );
        let after = Param::Uuid(after.map_or(uuid::Uuid::nil(), |id| id.as_uuid()));
        let head = [int(current), after, Param::BigInt(i64::from(limit))];
        match selection {
            PhotoSelection::All => self.fetch_all(ALL, &head, decode_photo).await,
            PhotoSelection::User(user) => {
                self.fetch_all(BY_USER, &[head[0], head[1], head[2], Param::Uuid(user.as_uuid())], decode_photo).await
            }
            PhotoSelection::Activity(activity) => {
                let params = [head[0], head[1], head[2], Param::Uuid(activity.as_uuid())];
                self.fetch_all(BY_ACTIVITY, &params, decode_photo).await
            }
        }
    }

    async fn storage_used(&mut self, user: UserId) -> RepoResult<u64> {
        const SQL: &str = "SELECT CAST(COALESCE(SUM(original_bytes + display_bytes + thumb_bytes), 0) AS BIGINT) \
                           FROM photos WHERE user_id = $1";
        let used = self.fetch_one(SQL, &[Param::Uuid(user.as_uuid())], |cols| Ok(cols.big_int()?)).await?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    async fn count_photos(&mut self, selection: PhotoSelection, current: u32) -> RepoResult<(u64, u64)> {
        const ALL: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN processing_version = $1 THEN 1 ELSE 0 END), 0) \
                           FROM photos";
        const BY_USER: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN processing_version = $1 THEN 1 ELSE 0 END), 0) \
                               FROM photos WHERE user_id = $2";
        const BY_ACTIVITY: &str = "SELECT COUNT(*), \
                                   COALESCE(SUM(CASE WHEN processing_version = $1 THEN 1 ELSE 0 END), 0) \
                                   FROM photos WHERE activity_id = $2";
        let decode =
            |cols: &mut Columns<'_, DB>| Ok((size("count", cols.big_int()?)?, size("count", cols.big_int()?)?));
        match selection {
            PhotoSelection::All => self.fetch_one(ALL, &[int(current)], decode).await,
            PhotoSelection::User(user) => {
                self.fetch_one(BY_USER, &[int(current), Param::Uuid(user.as_uuid())], decode).await
            }
            PhotoSelection::Activity(activity) => {
                self.fetch_one(BY_ACTIVITY, &[int(current), Param::Uuid(activity.as_uuid())], decode).await
            }
        }
    }

    async fn replace_renditions(&mut self, photo: &Photo, from_version: u32) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE photos SET display_format = $3, display_width = $4, display_height = $5, display_bytes = $6, \
                 thumb_format = $7, thumb_width = $8, thumb_height = $9, thumb_bytes = $10, \
                 processing_version = $11, width = $12, height = $13 \
                 WHERE id = $1 AND processing_version = $2",
                &[
                    Param::Uuid(photo.id.as_uuid()),
                    int(from_version),
                    Param::Text(photo.display.format.as_str()),
                    int(photo.display.width),
                    int(photo.display.height),
                    big(photo.display.bytes),
                    Param::Text(photo.thumb.format.as_str()),
                    int(photo.thumb.width),
                    int(photo.thumb.height),
                    big(photo.thumb.bytes),
                    int(photo.processing_version),
                    int(photo.width),
                    int(photo.height),
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn find_photo_upload_key(&mut self, scope: IdempotencyScope<'_>) -> RepoResult<Option<PhotoUploadRecord>> {
        self.fetch_optional(
            "SELECT fingerprint, activity_id, photo_ids FROM photo_upload_keys \
             WHERE user_id = $1 AND key = $2 AND created_at_us >= $3",
            &[Param::Uuid(scope.user.as_uuid()), Param::Text(scope.key), micros(scope.not_before)],
            |cols| {
                let fingerprint = cols.bytes()?;
                let activity_id = ActivityId::from_uuid(cols.uuid()?);
                let ids = cols.text()?;
                let photo_ids = ids
                    .split(',')
                    .filter(|id| !id.is_empty())
                    .map(|id| id.parse().map_err(|_| corrupt("photo_ids", &ids)))
                    .collect::<RepoResult<Vec<PhotoId>>>()?;
                Ok(PhotoUploadRecord { fingerprint, activity_id, photo_ids })
            },
        )
        .await
    }

    async fn record_photo_upload_key(
        &mut self,
        scope: IdempotencyScope<'_>,
        record: &PhotoUploadRecord,
        now: DateTime<Utc>,
    ) -> RepoResult<()> {
        let ids: Vec<String> = record.photo_ids.iter().map(|id| id.to_string()).collect();
        let ids = ids.join(",");
        let written = self
            .execute(
                "INSERT INTO photo_upload_keys (user_id, key, fingerprint, activity_id, photo_ids, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (user_id, key) DO UPDATE \
                 SET fingerprint = excluded.fingerprint, activity_id = excluded.activity_id, \
                     photo_ids = excluded.photo_ids, created_at_us = excluded.created_at_us \
                 WHERE photo_upload_keys.created_at_us < $7",
                &[
                    Param::Uuid(scope.user.as_uuid()),
                    Param::Text(scope.key),
                    Param::Bytes(&record.fingerprint),
                    Param::Uuid(record.activity_id.as_uuid()),
                    Param::Text(&ids),
                    micros(now),
                    micros(scope.not_before),
                ],
            )
            .await?;
        if written == 0 { Err(RepoError::Conflict { constraint: "photo_upload_keys_pkey".into() }) } else { Ok(()) }
    }
}
