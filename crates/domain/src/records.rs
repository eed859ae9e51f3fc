//! Best efforts, personal records and totals by period: the stored shapes and their rules.
//! The efforts themselves are computed by `stride-tracks` (README "Best efforts").

use chrono::Datelike;

use crate::{ActivityId, DayNumber, LocalDate, StartedAt};

/// One activity's best effort over one distance, in tenths of a second as the API shows them
/// (and as records rank them: equal tenths are a tie, which the earlier start wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestEffort {
    /// The distance in millimetres: exact for every standard distance (1 mile = 1,609,344 mm).
    pub distance_mm: i64,
    pub elapsed_ds: i64,
    /// From the track's first timed point.
    pub start_ds: i64,
    pub end_ds: i64,
}

impl BestEffort {
    /// From seconds, each rounded half away from zero to a tenth: the elapsed time is the
    /// rounded difference, not the difference of rounded ends.
    pub fn from_seconds(distance_m: f64, elapsed_s: f64, start_s: f64, end_s: f64) -> Self {
        let tenths = |s: f64| (s * 10.0).round() as i64;
        Self {
            distance_mm: (distance_m * 1000.0).round() as i64,
            elapsed_ds: tenths(elapsed_s),
            start_ds: tenths(start_s),
            end_ds: tenths(end_s),
        }
    }
}

/// An effort among a user's best of a sport and distance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedEffort {
    pub activity_id: ActivityId,
    pub elapsed_ds: i64,
    /// The activity's start, in its own offset.
    pub started_at: StartedAt,
}

/// The activity holding an extreme (longest distance, biggest climb) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Extreme {
    pub activity_id: ActivityId,
    pub value: f64,
    pub started_at: StartedAt,
}

/// How many best efforts a record keeps per sport and distance.
pub const RECORD_PLACES: usize = 3;

/// Month and year periods of the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month,
    Year,
}

impl Period {
    /// The first day of the period holding `day`.
    pub fn start_of(self, day: DayNumber) -> DayNumber {
        let date = LocalDate::from_day_number(day).date();
        let first = match self {
            Period::Month => date.with_day(1),
            Period::Year => date.with_ordinal(1),
        };
        LocalDate::new(first.unwrap_or(date)).day_number()
    }

    /// The first day of the period `count` periods after the one starting at `start`
    /// (negative: before).
    pub fn shift(self, start: DayNumber, count: i32) -> DayNumber {
        let date = LocalDate::from_day_number(start).date();
        let months = match self {
            Period::Month => count,
            Period::Year => 12 * count,
        };
        let shifted = if months >= 0 {
            date.checked_add_months(chrono::Months::new(months.unsigned_abs()))
        } else {
            date.checked_sub_months(chrono::Months::new(months.unsigned_abs()))
        };
        LocalDate::new(shifted.unwrap_or(date)).day_number()
    }
}

/// What one month of one sport adds up to (a row of `stats_months`), or a delta of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodTotals {
    pub activities: i64,
    pub distance_mm: i64,
    pub duration_s: i64,
    /// Climb in millimetres; manual activities add 0.
    pub gain_mm: i64,
}

impl std::ops::Neg for PeriodTotals {
    type Output = Self;
    /// What removing these totals adds.
    fn neg(self) -> Self {
        Self {
            activities: -self.activities,
            distance_mm: -self.distance_mm,
            duration_s: -self.duration_s,
            gain_mm: -self.gain_mm,
        }
    }
}

impl std::ops::AddAssign for PeriodTotals {
    fn add_assign(&mut self, other: Self) {
        self.activities += other.activities;
        self.distance_mm += other.distance_mm;
        self.duration_s += other.duration_s;
        self.gain_mm += other.gain_mm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> DayNumber {
        LocalDate::new(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()).day_number()
    }

    #[test]
    fn periods_start_on_their_first_day_and_shift_by_whole_periods() {
        assert_eq!(Period::Month.start_of(day(2026, 2, 28)), day(2026, 2, 1));
        assert_eq!(Period::Year.start_of(day(2026, 12, 31)), day(2026, 1, 1));
        assert_eq!(Period::Month.shift(day(2026, 1, 1), -1), day(2025, 12, 1));
        assert_eq!(Period::Month.shift(day(2026, 1, 1), 13), day(2027, 2, 1));
        assert_eq!(Period::Year.shift(day(2026, 1, 1), -3), day(2023, 1, 1));
    }

    #[test]
    fn efforts_round_to_tenths_half_away_from_zero() {
        let effort = BestEffort::from_seconds(1609.344, 299.96, 10.04, 310.0);
        assert_eq!(effort, BestEffort { distance_mm: 1_609_344, elapsed_ds: 3000, start_ds: 100, end_ds: 3100 });
    }
}
