//! Best efforts, personal records and totals by period (README "Best efforts and records").
//!
//! Efforts are computed once, when a track is imported (or by `stride records rebuild`), and
//! stored by the one activity-write path with copies of the activity's owner, sport,
//! visibility and start; everything here is a read of those rows. A record is "the three
//! fastest stored efforts of a sport and distance among the activities the reader may see",
//! one index range per distance: nothing to keep in step, so two imports finishing at once can
//! never lose one, and deleting a record's activity promotes the next best by the index alone.

mod maintain;
mod periods;
mod rebuild;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use stride_concurrency::Deadline;
use stride_domain::{ActivityId, BestEffort, Extreme, RECORD_PLACES, RankedEffort, Sport, UserId, Visibility};
use stride_repository::{RecordsRepo, StatsRepo, Store};
use stride_tracks::efforts::{RIDE_DISTANCES_M, RUN_DISTANCES_M};

use crate::access::{relationship, visible_activity};
use crate::tracks::TrackViews;
use crate::{Clock, ServiceError, ServiceResult};

pub(crate) use maintain::{efforts_of_track, on_written};
pub use periods::{MAX_PERIODS, PeriodStats, PeriodTotalsView};
pub use rebuild::{REBUILD_KIND, RebuildProgress, Rebuilt};

/// The distances (millimetres) whose efforts a sport shows: runs, walks and hikes the run set,
/// rides the ride set, other sports none.
pub fn distances_mm(sport: Sport) -> Vec<i64> {
    let metres: &[f64] = match sport {
        Sport::Run | Sport::Walk | Sport::Hike => &RUN_DISTANCES_M,
        Sport::Ride => &RIDE_DISTANCES_M,
        _ => &[],
    };
    metres.iter().map(|m| (m * 1000.0).round() as i64).collect()
}

/// One of an activity's efforts as its reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffortView {
    pub effort: BestEffort,
    /// 1–3 when among the three best of the sport and distance the reader may see.
    pub rank: Option<u32>,
}

/// A user's records in one sport, as one reader may see them.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    pub sport: Sport,
    /// Per distance with any effort, shortest first: up to three, fastest first.
    pub items: Vec<(i64, Vec<RankedEffort>)>,
    pub longest: Option<Extreme>,
    pub biggest_climb: Option<Extreme>,
}

#[derive(Clone)]
pub struct RecordsService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    views: TrackViews<S>,
}

impl<S: Store> RecordsService<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>, views: TrackViews<S>) -> Self {
        Self { store, clock, views }
    }

    /// The activity's efforts for the distances of its current sport, each ranked among what
    /// `viewer` may see; `NotFound` when the activity is not visible to them.
    pub async fn best_efforts(
        &self,
        deadline: Deadline,
        viewer: UserId,
        id: ActivityId,
    ) -> ServiceResult<Vec<EffortView>> {
        let mut uow = self.store.read(deadline).await?;
        let activity = visible_activity(&mut uow, viewer, id).await?;
        let stored = uow.efforts_of(id).await?;
        let wanted = distances_mm(activity.sport);
        let visible = Visibility::visible_to(relationship(&mut uow, viewer, activity.user_id).await?);
        let mut views = Vec::new();
        for effort in stored.into_iter().filter(|e| wanted.contains(&e.distance_mm)) {
            let best = uow
                .best_of(activity.user_id, activity.sport, effort.distance_mm, visible, RECORD_PLACES as u32)
                .await?;
            let rank = best.iter().position(|b| b.activity_id == id).map(|i| i as u32 + 1);
            views.push(EffortView { effort, rank });
        }
        Ok(views)
    }

    /// `subject`'s records in `sport` as `viewer` may see them: the owner sees all, a friend
    /// friends' and public activities; strangers and blocked users get `NotFound`.
    pub async fn records(
        &self,
        deadline: Deadline,
        viewer: UserId,
        subject: UserId,
        sport: Sport,
    ) -> ServiceResult<Records> {
        let mut uow = self.store.read(deadline).await?;
        let relation = relationship(&mut uow, viewer, subject).await?;
        if !relation.may_view_stats() || uow.stats_subject(subject).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let visible = Visibility::visible_to(relation);
        let mut items = Vec::new();
        for distance in distances_mm(sport) {
            let best = uow.best_of(subject, sport, distance, visible, RECORD_PLACES as u32).await?;
            if !best.is_empty() {
                items.push((distance, best));
            }
        }
        let longest = uow.longest(subject, sport, visible).await?;
        let biggest_climb = uow.biggest_climb(subject, sport, visible).await?;
        Ok(Records { sport, items, longest, biggest_climb })
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
