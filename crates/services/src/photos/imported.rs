//! Photos that arrive inside an archive (the `Media` of Strava's export): the same checks and
//! processing as an upload's, one file at a time, without a row. The import writes the row in
//! the transaction that creates the activity, so a photo and its activity exist together or
//! not at all.

use bytes::Bytes;
use stride_concurrency::Deadline;
use stride_domain::{ActivityId, Photo, UserId};
use stride_repository::{BlobKey, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::upload::StoredBlobs;
use super::{PhotoService, UploadFile};
use crate::{ServiceError, ServiceResult};

impl<S: Store> PhotoService<S> {
    /// Checks, processes and stores one photo of an activity not yet written; its blobs, for
    /// the caller to delete if the activity is never written. A failure leaves nothing stored.
    pub(crate) async fn store_for_import(
        &self,
        deadline: Deadline,
        owner: UserId,
        activity: ActivityId,
        name: &str,
        bytes: Bytes,
    ) -> ServiceResult<(Photo, Vec<BlobKey>)> {
        let file = UploadFile::new(name, bytes);
        self.check_files(std::slice::from_ref(&file))?;
        {
            let mut uow = self.store.read(deadline).await?;
            self.within_quota(&mut uow, owner, file.bytes.len() as u64).await?;
        }
        super::process::check_dimensions(&file.bytes, self.config.limits)
            .map_err(|e| ServiceError::Invalid { field: "photo", message: e.to_string() })?;
        let (stored, attempts, cancel) = (StoredBlobs::default(), TaskTracker::new(), CancellationToken::new());
        let now = self.clock.now();
        let photo = self.store_one(deadline, owner, activity, &file, now, &stored, &attempts, &cancel).await;
        attempts.close();
        attempts.wait().await;
        let keys = stored.take();
        match photo {
            Ok(photo) => Ok((photo, keys)),
            Err(error) => {
                self.storage.delete_all(&keys, Deadline::after(self.config.storage_timeout * 3)).await;
                Err(error)
            }
        }
    }
}
