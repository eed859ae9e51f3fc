//! Row shapes shared by both backends and their conversion into domain types. A stored value
//! that no longer parses is reported as `RepoError::Corrupt`, never a panic.

use chrono::{DateTime, NaiveDate, Utc};
use stride_domain::{
    Activity, ActivityId, DisplayName, Distance, Duration, StartedAt, TimeZone, Title, User, UserId, Username,
};
use uuid::Uuid;

use crate::RepoError;

pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn from_micros(value: i64) -> Result<DateTime<Utc>, RepoError> {
    DateTime::<Utc>::from_timestamp_micros(value).ok_or_else(|| corrupt("timestamp", value))
}

/// Local dates are stored as day numbers so streak queries can do integer arithmetic on both
/// backends alike.
pub(crate) fn day_number(date: NaiveDate) -> i32 {
    stride_domain::LocalDate::new(date).day_number()
}

fn corrupt(what: &str, value: impl std::fmt::Debug) -> RepoError {
    RepoError::Corrupt(format!("{what}: {value:?}"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    username: String,
    display_name: String,
    timezone: String,
    created_at_us: i64,
}

impl TryFrom<UserRow> for User {
    type Error = RepoError;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            username: Username::parse(&row.username).map_err(|_| corrupt("username", &row.username))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("display_name", &row.display_name))?,
            timezone: TimeZone::parse(&row.timezone).map_err(|_| corrupt("timezone", &row.timezone))?,
            created_at: from_micros(row.created_at_us)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialsRow {
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
    pub(crate) password_hash: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionUserRow {
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
    pub(crate) stats_version: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ActivityRow {
    id: Uuid,
    user_id: Uuid,
    sport: String,
    title: String,
    started_at_us: i64,
    utc_offset_s: i32,
    duration_s: i32,
    distance_m: f64,
    visibility: String,
    created_at_us: i64,
    updated_at_us: i64,
}

impl TryFrom<ActivityRow> for Activity {
    type Error = RepoError;
    fn try_from(row: ActivityRow) -> Result<Self, Self::Error> {
        Ok(Activity {
            id: ActivityId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            sport: row.sport.parse().map_err(|_| corrupt("sport", &row.sport))?,
            title: Title::parse(&row.title).map_err(|_| corrupt("title", &row.title))?,
            started_at: StartedAt::from_parts(row.started_at_us, row.utc_offset_s)
                .ok_or_else(|| corrupt("started_at", (row.started_at_us, row.utc_offset_s)))?,
            duration: Duration::from_seconds(row.duration_s.into())
                .map_err(|_| corrupt("duration_s", row.duration_s))?,
            distance: Distance::from_metres(row.distance_m).map_err(|_| corrupt("distance_m", row.distance_m))?,
            visibility: row.visibility.parse().map_err(|_| corrupt("visibility", &row.visibility))?,
            created_at: from_micros(row.created_at_us)?,
            updated_at: from_micros(row.updated_at_us)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

    #[test]
    fn day_numbers_count_from_the_unix_epoch() {
        assert_eq!(day_number(EPOCH), 0);
        assert_eq!(day_number(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(day_number(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()), -1);
    }
}
