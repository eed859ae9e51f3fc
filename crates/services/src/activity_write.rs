//! The one path every activity write takes: insert, change and delete, each with everything
//! derived from the activity kept in step inside the same unit of work.
//!
//! Derived data today: the owner's stats version (which invalidates cached statistics), the
//! totals and streak runs, the weekly totals, the weather lookup of a new start point, and the
//! deletion of a removed activity's photo blobs (a durable `photos.delete_blobs` job, enqueued
//! in the transaction that removes the rows, so a crash right after the commit cannot leave
//! the blobs behind), and likewise a track's points and original file (the file's hash, which
//! makes a re-import a duplicate, goes with the row). Best efforts (their copies of the activity's sport, visibility
//! and start) and the monthly totals are kept by [`crate::records`]'s `on_written`, called from
//! [`ActivityWrites::on_written`]; whatever derives from an activity next is added there too.
//!
//! Architecture Invariant: no use case calls `insert_activity`, `update_activity` or
//! `delete_activity` except through this module.
//!
//! Lock order, the same on every path: the activity row (when it exists), then the owner's
//! user row (`bump_stats_version`). Writers for one user serialise on that row.

use chrono::{DateTime, Utc};
use stride_domain::{Activity, BestEffort, NewJob, track_points_blob};
use stride_repository::UnitOfWork;
use stride_tracks::EFFORTS_VERSION;

use crate::photos::{delete_blobs_job, delete_keys_job};
use crate::weather::{WeatherConfig, weather_job};
use crate::{ServiceResult, records, stats};

/// What the write path needs to know of the rest of the product: whether a start point asks
/// for a weather lookup, and with how many attempts.
#[derive(Debug, Clone, Default)]
pub struct ActivityWrites {
    weather: WeatherConfig,
}

impl ActivityWrites {
    pub fn new(weather: WeatherConfig) -> Self {
        Self { weather }
    }

    /// Inserts a new activity with everything derived from it.
    pub(crate) async fn insert<U: UnitOfWork>(
        &self,
        uow: &mut U,
        mut activity: Activity,
        now: DateTime<Utc>,
    ) -> ServiceResult<Activity> {
        let weather = weather_job(&mut activity, &self.weather, now);
        // The owner's row first: a concurrent write for the same user waits here.
        uow.bump_stats_version(activity.user_id).await?;
        uow.insert_activity(&activity).await?;
        self.on_written(uow, None, Some(&activity), weather, now).await?;
        Ok(activity)
    }

    /// Inserts an activity recorded from a track, with the track's best efforts.
    pub(crate) async fn insert_recorded<U: UnitOfWork>(
        &self,
        uow: &mut U,
        activity: Activity,
        efforts: &[BestEffort],
        now: DateTime<Utc>,
    ) -> ServiceResult<Activity> {
        let activity = self.insert(uow, activity, now).await?;
        uow.replace_efforts(activity.id, efforts, EFFORTS_VERSION).await?;
        Ok(activity)
    }

    /// Writes `after` over `before` (read with `activity_by_id_for_update` in this unit of
    /// work). When the weather's target moved, a new lookup is enqueued.
    pub(crate) async fn update<U: UnitOfWork>(
        &self,
        uow: &mut U,
        before: &Activity,
        mut after: Activity,
        now: DateTime<Utc>,
    ) -> ServiceResult<Activity> {
        let weather = if before.weather_target() != after.weather_target() {
            weather_job(&mut after, &self.weather, now)
        } else {
            None
        };
        if stats::affects_stats(before, &after) {
            uow.bump_stats_version(after.user_id).await?;
        }
        uow.update_activity(&after).await?;
        self.on_written(uow, Some(before), Some(&after), weather, now).await?;
        Ok(after)
    }

    /// Deletes `before` (read with `activity_by_id_for_update` in this unit of work); its
    /// photo rows go with it (the foreign key cascades) and their blobs with a durable job.
    pub(crate) async fn delete<U: UnitOfWork>(
        &self,
        uow: &mut U,
        before: &Activity,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        // Read before the rows cascade away with the activity.
        let photos = if before.photo_count > 0 { uow.photos_of_activity(before.id).await? } else { Vec::new() };
        let file = if before.track.is_some() { uow.track_file(before.id).await? } else { None };
        uow.delete_activity(before.id).await?;
        uow.bump_stats_version(before.user_id).await?;
        if let Some(job) = delete_blobs_job(&photos, now)? {
            uow.enqueue(&job, now).await?;
        }
        if before.track.is_some() {
            // The track's points and its original file; the file's hash went with the row.
            let mut keys = vec![track_points_blob(before.id)];
            keys.extend(file.map(|file| file.blob_key));
            uow.enqueue(&delete_keys_job(keys, now)?, now).await?;
        }
        self.on_written(uow, Some(before), None, None, now).await
    }

    /// Keeps every derived figure in step with one write: `before` is the activity as it was
    /// (`None` for an insert), `after` as it is now (`None` for a delete).
    async fn on_written<U: UnitOfWork>(
        &self,
        uow: &mut U,
        before: Option<&Activity>,
        after: Option<&Activity>,
        weather: Option<[NewJob; 2]>,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        let counted_again = match (before, after) {
            (Some(before), Some(after)) => stats::affects_stats(before, after),
            _ => true,
        };
        if counted_again {
            if let Some(before) = before {
                stats::record(uow, before, -1).await?;
            }
            if let Some(after) = after {
                stats::record(uow, after, 1).await?;
            }
        }
        records::on_written(uow, before, after).await?;
        if let Some([lookup, follow_up]) = weather {
            // A new lookup, else the waiting one renewed; if the lookup is running instead, the
            // follow-up (new or renewed) looks again once it is done.
            for job in [lookup, follow_up] {
                let key = job.unique_key.as_deref().unwrap_or_default();
                if uow.enqueue(&job, now).await? || uow.renew_waiting(key, job.max_attempts, now).await? {
                    break;
                }
            }
        }
        Ok(())
    }
}
