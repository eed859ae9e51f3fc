//! Reading photos: an activity's list, one photo's row, and one rendition's bytes (or a
//! presigned URL), each as the viewer may see it.

use stride_concurrency::Deadline;
use stride_domain::{ActivityId, Photo, PhotoId, PhotoKind, UserId};
use stride_repository::{PhotoRepo, Store};

use crate::{ServiceError, ServiceResult};

use super::{Delivery, PhotoService, Served, blob_key, visible};

impl<S: Store> PhotoService<S> {
    /// An activity's photos by position, if the viewer may see the activity.
    pub async fn list(&self, deadline: Deadline, viewer: UserId, activity: ActivityId) -> ServiceResult<Vec<Photo>> {
        let mut uow = self.store.read(deadline).await?;
        visible(&mut uow, viewer, activity).await?;
        Ok(uow.photos_of_activity(activity).await?)
    }

    /// A photo the viewer may see (`Original`: only its owner).
    pub async fn photo(
        &self,
        deadline: Deadline,
        viewer: UserId,
        id: PhotoId,
        kind: PhotoKind,
    ) -> ServiceResult<Photo> {
        let mut uow = self.store.read(deadline).await?;
        let photo = uow.photo_by_id(id).await?.ok_or(ServiceError::NotFound)?;
        if kind == PhotoKind::Original && photo.user_id != viewer {
            return Err(ServiceError::NotFound);
        }
        visible(&mut uow, viewer, photo.activity_id).await?;
        Ok(photo)
    }

    /// The bytes (or a presigned URL, if `delivery` allows) of one rendition of a photo the
    /// caller may see.
    pub async fn serve(
        &self,
        deadline: Deadline,
        photo: &Photo,
        kind: PhotoKind,
        delivery: Delivery,
    ) -> ServiceResult<Served> {
        let key = blob_key(photo, kind)?;
        if kind != PhotoKind::Original
            && delivery == Delivery::RedirectWhenPresigned
            && let Some(ttl) = self.config.presign_ttl
            && let Some(url) = self.storage.presigned_get(&key, ttl).await?
        {
            return Ok(Served::Redirect(url));
        }
        match self.storage.get(&key, deadline).await {
            Ok(bytes) => Ok(Served::Bytes(bytes)),
            Err(ServiceError::NotFound) => Err(ServiceError::Internal(format!("photo {} has no blob {key}", photo.id))),
            Err(other) => Err(other),
        }
    }
}
