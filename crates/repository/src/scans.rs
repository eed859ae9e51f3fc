//! The seed's scan-based statistics queries and the repair path, kept out of the production
//! traits: the benchmarks measure the scans as the baseline the maintained aggregates beat, and
//! the tests recount with them. Cost grows with history, so nothing in the product calls them.

use std::future::Future;

use sqlx::{Postgres, Sqlite};
use stride_domain::{DayNumber, StatsScope, StreakLengths, UserId, streaks_from_days};

use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

/// Which activities a statistics scope counts (bound as `$2`); mirrors `domain::StatsScope`.
macro_rules! scope_filter {
    () => {
        "($2 = 'owner' OR visibility = 'public' OR ($2 = 'friends' AND visibility = 'friends'))"
    };
}

/// Pairs each activity (`a`) with every scope (`s.scope`) that counts it.
macro_rules! scopes_join {
    () => {
        "(SELECT 'owner' AS scope UNION ALL SELECT 'friends' UNION ALL SELECT 'public') s \
         ON s.scope = 'owner' OR (s.scope = 'friends' AND a.visibility IN ('friends', 'public')) \
         OR (s.scope = 'public' AND a.visibility = 'public')"
    };
}

pub trait StatsScans {
    fn scan_count(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    fn scan_distance_mm(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    fn scan_duration_s(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    /// The distinct local days with an activity in the scope, ascending.
    fn scan_active_days(
        &mut self,
        user: UserId,
        scope: StatsScope,
    ) -> impl Future<Output = RepoResult<Vec<DayNumber>>> + Send;
    /// The seed's fourth query: the day list above reduced by the domain's streak rule.
    fn scan_streaks(
        &mut self,
        user: UserId,
        scope: StatsScope,
        today: DayNumber,
    ) -> impl Future<Output = RepoResult<StreakLengths>> + Send
    where
        Self: Send,
    {
        async move { Ok(streaks_from_days(&self.scan_active_days(user, scope).await?, today)) }
    }
    /// Recomputes all of the user's aggregates from the activities table (repair, bulk loads).
    fn rebuild_stats(&mut self, user: UserId) -> impl Future<Output = RepoResult<()>> + Send;
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    async fn scan_sum(&mut self, sql: &'static str, user: UserId, scope: StatsScope) -> RepoResult<i64> {
        self.fetch_one(sql, &[Param::Uuid(user.as_uuid()), Param::Text(scope.as_str())], |cols| Ok(cols.big_int()?))
            .await
    }

    async fn scan_count_generic(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
        const SQL: &str =
            concat!("SELECT CAST(count(*) AS BIGINT) FROM activities WHERE user_id = $1 AND ", scope_filter!());
        self.scan_sum(SQL, user, scope).await
    }

    async fn scan_distance_generic(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
        const SQL: &str = concat!(
            "SELECT CAST(COALESCE(SUM(CAST(ROUND(distance_m * 1000) AS BIGINT)), 0) AS BIGINT) \
             FROM activities WHERE user_id = $1 AND ",
            scope_filter!()
        );
        self.scan_sum(SQL, user, scope).await
    }

    async fn scan_duration_generic(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
        const SQL: &str = concat!(
            "SELECT CAST(COALESCE(SUM(duration_s), 0) AS BIGINT) FROM activities WHERE user_id = $1 AND ",
            scope_filter!()
        );
        self.scan_sum(SQL, user, scope).await
    }

    async fn rebuild_stats_generic(&mut self, user: UserId) -> RepoResult<()> {
        let user = [Param::Uuid(user.as_uuid())];
        for table in [
            "DELETE FROM stats_totals WHERE user_id = $1",
            "DELETE FROM stats_days WHERE user_id = $1",
            "DELETE FROM stats_runs WHERE user_id = $1",
        ] {
            self.execute(table, &user).await?;
        }
        // The same statements as the backfill in migration 0002, for one user.
        const TOTALS: &str = concat!(
            "INSERT INTO stats_totals (user_id, scope, activity_count, distance_mm, duration_s) \
             SELECT a.user_id, s.scope, count(*), sum(CAST(round(a.distance_m * 1000) AS BIGINT)), sum(a.duration_s) \
             FROM activities a JOIN ",
            scopes_join!(),
            " WHERE a.user_id = $1 GROUP BY a.user_id, s.scope"
        );
        const DAYS: &str = concat!(
            "INSERT INTO stats_days (user_id, scope, local_day, activity_count) \
             SELECT a.user_id, s.scope, a.local_day, count(*) FROM activities a JOIN ",
            scopes_join!(),
            " WHERE a.user_id = $1 GROUP BY a.user_id, s.scope, a.local_day"
        );
        const RUNS: &str = "INSERT INTO stats_runs (user_id, scope, start_day, end_day, length) \
             SELECT user_id, scope, min(local_day), max(local_day), max(local_day) - min(local_day) + 1 \
             FROM (SELECT user_id, scope, local_day, \
                          local_day - ROW_NUMBER() OVER (PARTITION BY user_id, scope ORDER BY local_day) AS island \
                   FROM stats_days WHERE user_id = $1) days \
             GROUP BY user_id, scope, island";
        for statement in [TOTALS, DAYS, RUNS] {
            self.execute(statement, &user).await?;
        }
        Ok(())
    }
}

/// Everything but the day list is the same SQL on both backends.
macro_rules! impl_stats_scans {
    ($db:ty) => {
        impl StatsScans for SqlxUnitOfWork<$db> {
            async fn scan_count(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
                self.scan_count_generic(user, scope).await
            }
            async fn scan_distance_mm(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
                self.scan_distance_generic(user, scope).await
            }
            async fn scan_duration_s(&mut self, user: UserId, scope: StatsScope) -> RepoResult<i64> {
                self.scan_duration_generic(user, scope).await
            }
            async fn scan_active_days(&mut self, user: UserId, scope: StatsScope) -> RepoResult<Vec<DayNumber>> {
                self.active_days_ascending(user, scope).await
            }
            async fn rebuild_stats(&mut self, user: UserId) -> RepoResult<()> {
                self.rebuild_stats_generic(user).await
            }
        }
    };
}

impl_stats_scans!(Sqlite);
impl_stats_scans!(Postgres);

impl SqlxUnitOfWork<Sqlite> {
    /// Rows are cheap in-process, and SQLite has no array type to pack them into.
    async fn active_days_ascending(&mut self, user: UserId, scope: StatsScope) -> RepoResult<Vec<DayNumber>> {
        const SQL: &str = concat!(
            "SELECT DISTINCT local_day FROM activities WHERE user_id = $1 AND ",
            scope_filter!(),
            " ORDER BY local_day"
        );
        self.fetch_all(SQL, &[Param::Uuid(user.as_uuid()), Param::Text(scope.as_str())], |cols| {
            Ok(DayNumber::new(cols.int()?))
        })
        .await
    }
}

impl SqlxUnitOfWork<Postgres> {
    /// The days travel as one array, which costs a fraction of what ten thousand result rows
    /// cost to send and decode, and they are sorted and deduplicated here rather than in SQL.
    /// PostgreSQL 15 sorts an aggregate's input itself whatever order the rows arrive in, and
    /// `DISTINCT` adds a sort or hash of its own: measured at 10k activities, fetching the days
    /// took 9–14 ms with both and 4–6 ms without, sorting here included, whichever plan the
    /// table's statistics led to (55 against 48 ms at 100k). The outcome no longer depends on
    /// the plan either: any row order gives one answer.
    async fn active_days_ascending(&mut self, user: UserId, scope: StatsScope) -> RepoResult<Vec<DayNumber>> {
        const SQL: &str =
            concat!("SELECT array_agg(local_day) FROM activities WHERE user_id = $1 AND ", scope_filter!());
        let query = sqlx::query_as::<_, (Option<Vec<i32>>,)>(SQL).bind(user.as_uuid()).bind(scope.as_str());
        let (days,) = self.on_the_wire(|conn| query.fetch_one(conn)).await?;
        let mut days = days.unwrap_or_default();
        days.sort_unstable();
        days.dedup();
        Ok(days.into_iter().map(DayNumber::new).collect())
    }
}
