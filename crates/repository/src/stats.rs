//! Per-user aggregates, maintained in the same unit of work as every activity write. Reads
//! touch O(1) rows however long the history.

use std::future::Future;

use stride_domain::{DayNumber, StatsScope, StreakRun, StreakRunEdit, TimeZone, UserId};

use crate::codec::{corrupt, day};
use crate::dialect::{Columns, Dialect, Param};
use crate::{RepoError, RepoResult, SqlxUnitOfWork};

/// A user's stored totals in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsTotals {
    pub activities: i64,
    pub distance_mm: i64,
    pub duration_s: i64,
}

/// What a statistics read needs to know about its subject before computing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSubject {
    pub timezone: TimeZone,
    pub version: i64,
}

/// The maintenance methods are called by the services in the same unit of work as the activity
/// write they account for, after `bump_stats_version` has locked the user's row.
pub trait StatsRepo {
    fn stats_subject(&mut self, user: UserId) -> impl Future<Output = RepoResult<Option<StatsSubject>>> + Send;
    fn stats_totals(&mut self, user: UserId, scope: StatsScope)
    -> impl Future<Output = RepoResult<StatsTotals>> + Send;
    /// The latest run starting on or before `day` (the only candidate for the current streak).
    fn latest_run_starting_by(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: DayNumber,
    ) -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
    fn longest_run(
        &mut self,
        user: UserId,
        scope: StatsScope,
    ) -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;

    /// Increments the user's statistics version, taking the user row's lock until the unit of
    /// work ends. `NotFound` if the user is gone.
    fn bump_stats_version(&mut self, user: UserId) -> impl Future<Output = RepoResult<()>> + Send;
    fn adjust_totals(
        &mut self,
        user: UserId,
        scope: StatsScope,
        delta: StatsTotals,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Adds `delta` to a day's activity count and returns the new count (0 removes the day).
    fn adjust_day(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: DayNumber,
        delta: i32,
    ) -> impl Future<Output = RepoResult<i64>> + Send;
    fn run_ending_at(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: DayNumber,
    ) -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
    fn run_starting_at(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: DayNumber,
    ) -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
    fn apply_run_edit(
        &mut self,
        user: UserId,
        scope: StatsScope,
        edit: StreakRunEdit,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Adds `delta` to the owner's totals of the week starting `week_start` (a Monday); a week
    /// that no longer counts an activity is removed.
    fn adjust_week(
        &mut self,
        user: UserId,
        week_start: DayNumber,
        delta: StatsTotals,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// The owner's weeks with activities from `first` to `last` (Mondays, inclusive), oldest first.
    fn weeks(
        &mut self,
        user: UserId,
        first: DayNumber,
        last: DayNumber,
    ) -> impl Future<Output = RepoResult<Vec<(DayNumber, StatsTotals)>>> + Send;
}

pub(crate) fn decode_run<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<StreakRun> {
    Ok(StreakRun { start: DayNumber::new(cols.int()?), end: DayNumber::new(cols.int()?) })
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    /// The one run of `(user, scope)` that `sql` selects with `day` bound as `$3`.
    async fn run_at(
        &mut self,
        sql: &'static str,
        user: UserId,
        scope: StatsScope,
        on: DayNumber,
    ) -> RepoResult<Option<StreakRun>> {
        self.fetch_optional(sql, &[Param::Uuid(user.as_uuid()), Param::Text(scope.as_str()), day(on)], decode_run).await
    }
}

impl<DB: Dialect> StatsRepo for SqlxUnitOfWork<DB> {
    async fn stats_subject(&mut self, user: UserId) -> RepoResult<Option<StatsSubject>> {
        self.fetch_optional(
            "SELECT timezone, stats_version FROM users WHERE id = $1",
            &[Param::Uuid(user.as_uuid())],
            |cols| {
                let timezone = cols.text()?;
                let timezone = TimeZone::parse(&timezone).map_err(|_| corrupt("timezone", &timezone))?;
                Ok(StatsSubject { timezone, version: cols.big_int()? })
            },
        )
        .await
    }

    async fn stats_totals(&mut self, user: UserId, scope: StatsScope) -> RepoResult<StatsTotals> {
        let stored = self
            .fetch_optional(
                "SELECT activity_count, distance_mm, duration_s FROM stats_totals WHERE user_id = $1 AND scope = $2",
                &[Param::Uuid(user.as_uuid()), Param::Text(scope.as_str())],
                |cols| {
                    Ok(StatsTotals {
                        activities: cols.big_int()?,
                        distance_mm: cols.big_int()?,
                        duration_s: cols.big_int()?,
                    })
                },
            )
            .await?;
        Ok(stored.unwrap_or_default())
    }

    async fn latest_run_starting_by(
        &mut self,
        user: UserId,
        scope: StatsScope,
        on: DayNumber,
    ) -> RepoResult<Option<StreakRun>> {
        const SQL: &str = "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 \
                           AND start_day <= $3 ORDER BY start_day DESC LIMIT 1";
        self.run_at(SQL, user, scope, on).await
    }

    async fn longest_run(&mut self, user: UserId, scope: StatsScope) -> RepoResult<Option<StreakRun>> {
        self.fetch_optional(
            "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 ORDER BY length DESC LIMIT 1",
            &[Param::Uuid(user.as_uuid()), Param::Text(scope.as_str())],
            decode_run,
        )
        .await
    }

    async fn bump_stats_version(&mut self, user: UserId) -> RepoResult<()> {
        let changed = self
            .execute("UPDATE users SET stats_version = stats_version + 1 WHERE id = $1", &[Param::Uuid(user.as_uuid())])
            .await?;
        if changed == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn adjust_totals(&mut self, user: UserId, scope: StatsScope, delta: StatsTotals) -> RepoResult<()> {
        self.execute(
            "INSERT INTO stats_totals (user_id, scope, activity_count, distance_mm, duration_s) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, scope) DO UPDATE SET \
             activity_count = stats_totals.activity_count + excluded.activity_count, \
             distance_mm = stats_totals.distance_mm + excluded.distance_mm, \
             duration_s = stats_totals.duration_s + excluded.duration_s",
            &[
                Param::Uuid(user.as_uuid()),
                Param::Text(scope.as_str()),
                Param::BigInt(delta.activities),
                Param::BigInt(delta.distance_mm),
                Param::BigInt(delta.duration_s),
            ],
        )
        .await?;
        Ok(())
    }

    async fn adjust_week(&mut self, user: UserId, week_start: DayNumber, delta: StatsTotals) -> RepoResult<()> {
        let key = [Param::Uuid(user.as_uuid()), day(week_start)];
        let count = self
            .fetch_one(
                "INSERT INTO stats_weeks (user_id, week_start, activity_count, distance_mm, duration_s) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, week_start) DO UPDATE SET \
                 activity_count = stats_weeks.activity_count + excluded.activity_count, \
                 distance_mm = stats_weeks.distance_mm + excluded.distance_mm, \
                 duration_s = stats_weeks.duration_s + excluded.duration_s \
                 RETURNING CAST(activity_count AS BIGINT)",
                &[
                    key[0],
                    key[1],
                    Param::BigInt(delta.activities),
                    Param::BigInt(delta.distance_mm),
                    Param::BigInt(delta.duration_s),
                ],
                |cols| Ok(cols.big_int()?),
            )
            .await?;
        if count < 0 {
            return Err(RepoError::Corrupt(format!("week {week_start} of user {user} would count {count} activities")));
        }
        if count == 0 {
            self.execute("DELETE FROM stats_weeks WHERE user_id = $1 AND week_start = $2", &key).await?;
        }
        Ok(())
    }

    async fn weeks(
        &mut self,
        user: UserId,
        first: DayNumber,
        last: DayNumber,
    ) -> RepoResult<Vec<(DayNumber, StatsTotals)>> {
        const SQL: &str = "SELECT week_start, CAST(activity_count AS BIGINT), CAST(distance_mm AS BIGINT), \
                           CAST(duration_s AS BIGINT) FROM stats_weeks \
                           WHERE user_id = $1 AND week_start >= $2 AND week_start <= $3 ORDER BY week_start";
        self.fetch_all(SQL, &[Param::Uuid(user.as_uuid()), day(first), day(last)], |cols| {
            let week = DayNumber::new(cols.int()?);
            Ok((
                week,
                StatsTotals { activities: cols.big_int()?, distance_mm: cols.big_int()?, duration_s: cols.big_int()? },
            ))
        })
        .await
    }

    async fn adjust_day(&mut self, user: UserId, scope: StatsScope, on: DayNumber, delta: i32) -> RepoResult<i64> {
        let key = [Param::Uuid(user.as_uuid()), Param::Text(scope.as_str()), day(on)];
        let count = self
            .fetch_one(
                "INSERT INTO stats_days (user_id, scope, local_day, activity_count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, scope, local_day) DO UPDATE \
                 SET activity_count = stats_days.activity_count + excluded.activity_count \
                 RETURNING CAST(activity_count AS BIGINT)",
                &[key[0], key[1], key[2], Param::Int(delta)],
                |cols| Ok(cols.big_int()?),
            )
            .await?;
        if count < 0 {
            return Err(RepoError::Corrupt(format!("day {on} of user {user} would count {count} activities")));
        }
        if count == 0 {
            self.execute("DELETE FROM stats_days WHERE user_id = $1 AND scope = $2 AND local_day = $3", &key).await?;
        }
        Ok(count)
    }

    async fn run_ending_at(&mut self, user: UserId, scope: StatsScope, on: DayNumber) -> RepoResult<Option<StreakRun>> {
        const SQL: &str =
            "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 AND end_day = $3";
        self.run_at(SQL, user, scope, on).await
    }

    async fn run_starting_at(
        &mut self,
        user: UserId,
        scope: StatsScope,
        on: DayNumber,
    ) -> RepoResult<Option<StreakRun>> {
        const SQL: &str =
            "SELECT start_day, end_day FROM stats_runs WHERE user_id = $1 AND scope = $2 AND start_day = $3";
        self.run_at(SQL, user, scope, on).await
    }

    async fn apply_run_edit(&mut self, user: UserId, scope: StatsScope, edit: StreakRunEdit) -> RepoResult<()> {
        let (user_id, scope_name) = (Param::Uuid(user.as_uuid()), Param::Text(scope.as_str()));
        let length = |run: StreakRun| Param::Int(run.days() as i32);
        let changed = match edit {
            StreakRunEdit::Insert(run) => {
                self.execute(
                    "INSERT INTO stats_runs (user_id, scope, start_day, end_day, length) VALUES ($1, $2, $3, $4, $5)",
                    &[user_id, scope_name, day(run.start), day(run.end), length(run)],
                )
                .await?
            }
            StreakRunEdit::Delete(run) => {
                self.execute(
                    "DELETE FROM stats_runs WHERE user_id = $1 AND scope = $2 AND start_day = $3 AND end_day = $4",
                    &[user_id, scope_name, day(run.start), day(run.end)],
                )
                .await?
            }
            StreakRunEdit::Replace { old, new } => {
                self.execute(
                    "UPDATE stats_runs SET start_day = $5, end_day = $6, length = $7 \
                     WHERE user_id = $1 AND scope = $2 AND start_day = $3 AND end_day = $4",
                    &[user_id, scope_name, day(old.start), day(old.end), day(new.start), day(new.end), length(new)],
                )
                .await?
            }
        };
        if changed == 1 {
            Ok(())
        } else {
            Err(RepoError::Corrupt(format!("streak run edit {edit:?} matched {changed} rows")))
        }
    }
}
