//! The write side of statistics: every activity create, update and delete accounts for itself
//! here, inside its own unit of work, after `bump_stats_version` has locked the owner's row. So
//! concurrent writes for one user apply their deltas one after another, and the per-scope
//! totals, day counts and streak runs never drift from the activities table (tested against a
//! full recount).

use stride_domain::{Activity, StatsScope, StreakRunEdit, add_day, remove_day};
use stride_repository::{StatsTotals, UnitOfWork};

use crate::{ServiceError, ServiceResult};

/// Accounts for `activity` appearing (`sign` = 1) or disappearing (−1) in every scope that
/// counts it. The caller has already bumped (and so locked) the owner's statistics version.
pub(crate) async fn record<U: UnitOfWork>(uow: &mut U, activity: &Activity, sign: i32) -> ServiceResult<()> {
    let user = activity.user_id;
    let day = activity.local_date().day_number();
    let delta = StatsTotals {
        activities: i64::from(sign),
        distance_mm: i64::from(sign) * (activity.distance.metres() * 1000.0).round() as i64,
        duration_s: i64::from(sign) * i64::from(activity.duration.seconds()),
    };
    for scope in StatsScope::counting(activity.visibility) {
        uow.adjust_totals(user, scope, delta).await?;
        let count = uow.adjust_day(user, scope, day, sign).await?;
        let edits: Vec<StreakRunEdit> = match (sign > 0, count) {
            (true, 1) => {
                let left = uow.run_ending_at(user, scope, day - 1).await?;
                let right = uow.run_starting_at(user, scope, day + 1).await?;
                add_day(day, left, right)
            }
            (false, 0) => {
                let containing =
                    uow.latest_run_starting_by(user, scope, day).await?.filter(|run| run.end >= day).ok_or_else(
                        || ServiceError::Internal(format!("no streak run holds active day {day} of {user}")),
                    )?;
                remove_day(day, containing)
            }
            _ => Vec::new(),
        };
        for edit in edits {
            uow.apply_run_edit(user, scope, edit).await?;
        }
    }
    uow.adjust_week(user, day.week_start(), delta).await?;
    Ok(())
}

/// Whether an update changes anything statistics count.
pub(crate) fn affects_stats(before: &Activity, after: &Activity) -> bool {
    before.distance != after.distance
        || before.duration != after.duration
        || before.visibility != after.visibility
        || before.local_date() != after.local_date()
}
