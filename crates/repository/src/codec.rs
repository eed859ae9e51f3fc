//! How domain values are stored: instants as microseconds, local dates as day numbers. A stored
//! value that no longer parses is reported as `RepoError::Corrupt`, never a panic.

use chrono::{DateTime, Utc};
use stride_domain::DayNumber;

use crate::RepoError;
use crate::dialect::Param;

pub(crate) fn micros(at: DateTime<Utc>) -> Param<'static> {
    Param::BigInt(at.timestamp_micros())
}

pub(crate) fn from_micros(value: i64) -> Result<DateTime<Utc>, RepoError> {
    DateTime::<Utc>::from_timestamp_micros(value).ok_or_else(|| corrupt("timestamp", value))
}

/// Local dates are stored as day numbers so streak queries can do integer arithmetic on both
/// backends alike.
pub(crate) fn day(day: DayNumber) -> Param<'static> {
    Param::Int(day.get())
}

pub(crate) fn corrupt(what: &str, value: impl std::fmt::Debug) -> RepoError {
    RepoError::Corrupt(format!("{what}: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_survive_the_round_trip_through_microseconds() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        let Param::BigInt(stored) = micros(at) else { panic!("instants are stored as integers") };
        assert_eq!(from_micros(stored).unwrap(), at);
    }

    #[test]
    fn an_instant_out_of_range_is_corrupt_data_not_a_panic() {
        assert!(matches!(from_micros(i64::MAX), Err(RepoError::Corrupt(_))));
    }
}
