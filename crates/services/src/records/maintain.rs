//! The write side: what every activity write does to efforts and monthly totals, called by
//! [`crate::ActivityWrites`] inside the write's own unit of work.

use stride_domain::{Activity, BestEffort, DayNumber, Period, PeriodTotals, Sport};
use stride_repository::UnitOfWork;
use stride_tracks::{Point, best_efforts};

use crate::ServiceResult;

/// A track's efforts for every standard distance it covers (both sets), as stored.
pub(crate) fn efforts_of_track(points: &[Point], cumulative: &[f64]) -> Vec<BestEffort> {
    best_efforts(points, cumulative)
        .into_iter()
        .map(|e| BestEffort::from_seconds(e.distance_m, e.elapsed_s, e.start_offset_s, e.end_offset_s))
        .collect()
}

/// What an activity adds to its month: the key and the totals.
fn month_of(activity: &Activity) -> (DayNumber, Sport, PeriodTotals) {
    let gain_m = activity.track.as_ref().and_then(|t| t.elevation_gain_m).unwrap_or(0.0);
    let totals = PeriodTotals {
        activities: 1,
        distance_mm: (activity.distance.metres() * 1000.0).round() as i64,
        duration_s: i64::from(activity.duration.seconds()),
        gain_mm: (gain_m * 1000.0).round() as i64,
    };
    (Period::Month.start_of(activity.local_date().day_number()), activity.sport, totals)
}

/// Keeps the months and the efforts' copies in step with one write (`before` `None` for an
/// insert, `after` `None` for a delete; a delete's efforts go with the row).
pub(crate) async fn on_written<U: UnitOfWork>(
    uow: &mut U,
    before: Option<&Activity>,
    after: Option<&Activity>,
) -> ServiceResult<()> {
    let (was, is) = (before.map(month_of), after.map(month_of));
    if was != is {
        if let (Some((month, sport, totals)), Some(before)) = (was, before) {
            uow.adjust_month(before.user_id, month, sport, -totals).await?;
        }
        if let (Some((month, sport, totals)), Some(after)) = (is, after) {
            uow.adjust_month(after.user_id, month, sport, totals).await?;
        }
    }
    if let (Some(before), Some(after)) = (before, after)
        && after.track.is_some()
        && (before.sport != after.sport
            || before.visibility != after.visibility
            || before.started_at.utc_micros() != after.started_at.utc_micros())
    {
        uow.sync_efforts(after.id, after.user_id, after.sport, after.visibility, after.started_at.utc_micros()).await?;
    }
    Ok(())
}
