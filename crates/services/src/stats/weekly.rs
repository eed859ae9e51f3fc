//! Distance, time and count per ISO week: the dashboard's chart and `/me/stats/weekly`.
//!
//! Weeks start on Monday, and an activity counts in the week of its *local date* — the same
//! rule as the streaks, so the chart and the streaks never disagree about a late-night run. The
//! current week is the one holding today in the user's time zone. Per-week totals are kept in
//! the write transaction (`stats_weeks`), so a read is one index range of at most `weeks` rows.

use chrono::{DateTime, NaiveDate, Utc};
use stride_concurrency::Deadline;
use stride_domain::{DayNumber, LocalDate};
use stride_repository::{StatsRepo, Store};

use super::StatsService;
use crate::{Caller, ServiceError, ServiceResult};

/// How many weeks one request may ask for (two years).
pub const MAX_WEEKS: u32 = 104;

/// One week's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekTotals {
    /// The Monday.
    pub week_start: NaiveDate,
    pub activities: u64,
    pub distance_m: f64,
    pub duration_s: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyStats {
    /// Oldest first, empty weeks included; the last is the current week.
    pub weeks: Vec<WeekTotals>,
    pub as_of: DateTime<Utc>,
}

impl<S: Store> StatsService<S> {
    /// The caller's last `weeks` weeks (1–[`MAX_WEEKS`]), the current one last.
    pub async fn weekly(&self, deadline: Deadline, caller: &Caller, weeks: u32) -> ServiceResult<WeeklyStats> {
        if !(1..=MAX_WEEKS).contains(&weeks) {
            return Err(ServiceError::Invalid { field: "weeks", message: format!("must be 1 to {MAX_WEEKS}") });
        }
        let user = &caller.user;
        let as_of = self.clock.now();
        let current = LocalDate::new(user.timezone.today(as_of)).day_number().week_start();
        let first = current - 7 * (weeks as i32 - 1);
        let stored = self.store.read(deadline).await?.weeks(user.id, first, current).await?;
        let mut stored = stored.into_iter().peekable();
        let weeks = (0..weeks as i32)
            .map(|i| {
                let week: DayNumber = first + 7 * i;
                let totals = stored.next_if(|(start, _)| *start == week).map(|(_, totals)| totals).unwrap_or_default();
                WeekTotals {
                    week_start: LocalDate::from_day_number(week).date(),
                    activities: totals.activities.max(0) as u64,
                    distance_m: totals.distance_mm as f64 / 1000.0,
                    duration_s: totals.duration_s.max(0) as u64,
                }
            })
            .collect();
        Ok(WeeklyStats { weeks, as_of })
    }
}
