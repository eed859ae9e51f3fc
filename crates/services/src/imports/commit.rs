//! The write stage of an archive's pipeline: one item's activity, track file, Strava id,
//! photos and state in one transaction that first locks the job's row at this attempt, so a
//! rescued job never writes an item twice and a lost lease writes nothing.

use std::sync::Arc;
use std::time::Duration;

use stride_concurrency::Deadline;
use stride_repository::{ImportRepo, ItemOutcome, PhotoRepo, Store};

use super::pipeline::{Attempt, Ready, Step};
use super::run::Stop;
use crate::ServiceError;
use crate::uow::finish;

impl<S: Store> Attempt<S> {
    pub(super) async fn write(self: Arc<Self>, step: Step) -> Result<Step, Stop> {
        let Step::Ready(ready) = step else { return Ok(step) };
        let Ready { item, activity, file, efforts, strava_id, mut photos, warnings, blobs } = *ready;
        let now = self.service.clock.now();
        let owner = self.import.user_id;
        let id = activity.id;
        let mut uow = self.service.fenced(&self.lease).await?;
        let written = async {
            // The same file or Strava activity committed since the check (another import).
            let mut earlier = match &file {
                Some(file) => uow.activity_with_file(owner, &file.sha256).await?,
                None => None,
            };
            if let (None, Some(strava)) = (earlier, &strava_id) {
                earlier = uow.activity_with_strava_id(owner, strava).await?;
            }
            if let Some(earlier) = earlier {
                uow.settle_item(item.import_id, item.index, &ItemOutcome::Duplicate(earlier), &[]).await?;
                return Ok(false);
            }
            self.service.writes.insert_recorded(&mut uow, activity, &efforts, now).await?;
            if let Some(file) = &file {
                uow.insert_track_file(file).await?;
            }
            if let Some(strava) = &strava_id {
                uow.insert_strava_id(owner, strava, id).await?;
            }
            for (position, photo) in photos.iter_mut().enumerate() {
                photo.position = position as u32;
                uow.insert_photo(photo).await?;
            }
            if !uow.settle_item(item.import_id, item.index, &ItemOutcome::Imported(id), &warnings).await? {
                return Err(ServiceError::Conflict { code: "cancelled", message: "the item was cancelled".into() });
            }
            Ok(true)
        }
        .await;
        let outcome = finish(uow, written).await;
        if matches!(outcome, Ok(false) | Err(ServiceError::Conflict { code: "cancelled", .. })) {
            // Known not written: what was stored for it is nobody's. After an unknown outcome
            // it stays; gc removes what no row names.
            self.service.storage.delete_all(&blobs, Deadline::after(Duration::from_secs(30))).await;
        }
        match outcome {
            Ok(_) | Err(ServiceError::Conflict { code: "cancelled", .. }) => Ok(Step::Settled),
            Err(error) => Err(Stop::Failed(error)),
        }
    }
}
