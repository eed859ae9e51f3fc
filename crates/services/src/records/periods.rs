//! Totals by month or year, of one sport or all: `/me/stats/periods` and the dashboard chart.
//! Each activity counts in the month of its local date (like the weekly totals and streaks);
//! the current period is the one holding today in the user's time zone. Months are kept per
//! write (`stats_months`), so a read is one index range of the caller's months, however long
//! the history; a year adds up its twelve.

use chrono::{DateTime, NaiveDate, Utc};
use stride_concurrency::Deadline;
use stride_domain::{LocalDate, Period, PeriodTotals, Sport};
use stride_repository::{RecordsRepo, Store};

use super::RecordsService;
use crate::{Caller, ServiceError, ServiceResult};

/// How many periods one request may ask for.
pub const MAX_PERIODS: u32 = 120;

/// One period's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodTotalsView {
    /// The period's first day.
    pub start: NaiveDate,
    pub activities: u64,
    pub distance_m: f64,
    pub duration_s: u64,
    pub elevation_gain_m: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStats {
    /// Oldest first, empty periods included; the last holds today.
    pub periods: Vec<PeriodTotalsView>,
    pub as_of: DateTime<Utc>,
}

impl<S: Store> RecordsService<S> {
    /// The caller's last `count` periods (1–[`MAX_PERIODS`]) of `sport` (all when `None`).
    pub async fn periods(
        &self,
        deadline: Deadline,
        caller: &Caller,
        period: Period,
        count: u32,
        sport: Option<Sport>,
    ) -> ServiceResult<PeriodStats> {
        if !(1..=MAX_PERIODS).contains(&count) {
            return Err(ServiceError::Invalid { field: "count", message: format!("must be 1 to {MAX_PERIODS}") });
        }
        let user = &caller.user;
        let as_of = self.now();
        let today = LocalDate::new(user.timezone.today(as_of)).day_number();
        let current = period.start_of(today);
        let first = period.shift(current, 1 - count as i32);
        let last_month = Period::Month.shift(period.shift(current, 1), -1);
        let months = self.store.read(deadline).await?.months(user.id, first, last_month, sport).await?;
        let mut months = months.into_iter().peekable();
        let periods = (0..count as i32)
            .map(|i| {
                let start = period.shift(first, i);
                let end = period.shift(first, i + 1);
                let mut totals = PeriodTotals::default();
                while let Some((_, month)) = months.next_if(|(m, _)| *m < end) {
                    totals += month;
                }
                PeriodTotalsView {
                    start: LocalDate::from_day_number(start).date(),
                    activities: totals.activities.max(0) as u64,
                    distance_m: totals.distance_mm as f64 / 1000.0,
                    duration_s: totals.duration_s.max(0) as u64,
                    elevation_gain_m: totals.gain_mm as f64 / 1000.0,
                }
            })
            .collect();
        Ok(PeriodStats { periods, as_of })
    }
}
