//! Best efforts, records and totals by month: the stored side. Efforts carry copies of their
//! activity's owner, sport, visibility and start, so "the three best a reader may see" is one
//! index range (`best_efforts_ranking`) however long the history; the activity-write path keeps
//! the copies in step. Records are not stored apart from the efforts: deleting a record's
//! activity promotes the next best simply by the index's order, never by re-reading a track.

use std::future::Future;

use stride_domain::{
    ActivityId, BestEffort, DayNumber, Extreme, PeriodTotals, RankedEffort, Sport, StartedAt, UserId, Visibility,
};

use crate::codec::{corrupt, day};
use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

/// Which of an owner's activities a reader may see: one to three visibilities, passed as three
/// parameters (repeated to fill) so every query stays one static statement.
fn visible<'a>(visibilities: &[Visibility]) -> [Param<'a>; 3] {
    let pick = |i: usize| visibilities.get(i).or(visibilities.last()).map_or("none", |v| v.as_str());
    [Param::Text(pick(0)), Param::Text(pick(1)), Param::Text(pick(2))]
}

/// Efforts one `INSERT` carries at most: every distance of both sports fits in one, and the
/// statement texts stay few.
const EFFORTS_PER_STATEMENT: usize = 16;

/// `$1` the activity, `$2` the version, then four per effort. The copies come from the
/// activity row itself, in this same transaction.
fn insert_efforts_sql(efforts: usize) -> String {
    let rows: Vec<String> = (0..efforts)
        .map(|i| {
            let first = 3 + 4 * i;
            format!("(${first}, ${}, ${}, ${})", first + 1, first + 2, first + 3)
        })
        .collect();
    format!(
        "INSERT INTO best_efforts (activity_id, distance_mm, user_id, sport, visibility, started_at_us, \
         elapsed_ds, start_ds, end_ds, version) \
         SELECT a.id, e.column1, a.user_id, a.sport, a.visibility, a.started_at_us, e.column2, e.column3, e.column4, $2 \
         FROM activities AS a CROSS JOIN (VALUES {}) AS e WHERE a.id = $1",
        rows.join(", ")
    )
}

pub trait RecordsRepo {
    /// Stores an activity's efforts (computed by algorithm `version`), replacing any it had.
    fn replace_efforts(
        &mut self,
        activity: ActivityId,
        efforts: &[BestEffort],
        version: i32,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Copies the activity's owner, sport, visibility and start onto its efforts.
    fn sync_efforts(
        &mut self,
        activity: ActivityId,
        user: UserId,
        sport: Sport,
        visibility: Visibility,
        started_at_us: i64,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// An activity's efforts, shortest distance first.
    fn efforts_of(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Vec<BestEffort>>> + Send;
    /// The fastest `limit` efforts of `user` over `distance_mm` in `sport` among activities of
    /// the given visibilities; ties go to the earlier start.
    fn best_of(
        &mut self,
        user: UserId,
        sport: Sport,
        distance_mm: i64,
        visibilities: &[Visibility],
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<RankedEffort>>> + Send;
    /// The longest activity of a sport among the given visibilities.
    fn longest(
        &mut self,
        user: UserId,
        sport: Sport,
        visibilities: &[Visibility],
    ) -> impl Future<Output = RepoResult<Option<Extreme>>> + Send;
    /// The activity of a sport with the biggest measured climb (> 0) among the visibilities.
    fn biggest_climb(
        &mut self,
        user: UserId,
        sport: Sport,
        visibilities: &[Visibility],
    ) -> impl Future<Output = RepoResult<Option<Extreme>>> + Send;
    /// Adds `delta` to one month of one sport; the row goes when it counts nothing.
    fn adjust_month(
        &mut self,
        user: UserId,
        month_start: DayNumber,
        sport: Sport,
        delta: PeriodTotals,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// The stored months from `first` to `last` (inclusive), of one sport or all, oldest first.
    fn months(
        &mut self,
        user: UserId,
        first: DayNumber,
        last: DayNumber,
        sport: Option<Sport>,
    ) -> impl Future<Output = RepoResult<Vec<(DayNumber, PeriodTotals)>>> + Send;
    /// Activities with a track whose efforts are missing or older than `version`, after
    /// `after` in id order: the work of a rebuild.
    fn activities_needing_efforts(
        &mut self,
        version: i32,
        user: Option<UserId>,
        after: Option<ActivityId>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<ActivityId>>> + Send;
}

fn extreme<DB: Dialect>(cols: &mut crate::dialect::Columns<'_, DB>) -> RepoResult<Extreme> {
    Ok(Extreme { activity_id: ActivityId::from_uuid(cols.uuid()?), value: cols.real()?, started_at: started(cols)? })
}

/// `started_at_us, utc_offset_s` as the activity's start.
fn started<DB: Dialect>(cols: &mut crate::dialect::Columns<'_, DB>) -> RepoResult<StartedAt> {
    let (micros, offset) = (cols.big_int()?, cols.int()?);
    StartedAt::from_parts(micros, offset).ok_or_else(|| corrupt("started_at", (micros, offset)))
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    /// The one activity an extreme's query (`$1` user, `$2` sport, `$3..$5` visibilities) finds.
    async fn extreme(
        &mut self,
        sql: &'static str,
        user: UserId,
        sport: Sport,
        visibilities: &[Visibility],
    ) -> RepoResult<Option<Extreme>> {
        let [a, b, c] = visible(visibilities);
        self.fetch_optional(sql, &[Param::Uuid(user.as_uuid()), Param::Text(sport.as_str()), a, b, c], extreme).await
    }
}

impl<DB: Dialect> RecordsRepo for SqlxUnitOfWork<DB> {
    async fn replace_efforts(&mut self, activity: ActivityId, efforts: &[BestEffort], version: i32) -> RepoResult<()> {
        let id = Param::Uuid(activity.as_uuid());
        self.execute("DELETE FROM best_efforts WHERE activity_id = $1", &[id]).await?;
        self.execute("UPDATE activities SET efforts_version = $2 WHERE id = $1", &[id, Param::Int(version)]).await?;
        // One statement per chunk rather than per effort: on SQLite each statement is a round
        // trip to the writer's thread, on the single connection every import's write queues on.
        for chunk in efforts.chunks(EFFORTS_PER_STATEMENT) {
            let sql = crate::statements::statement("insert_efforts", chunk.len(), || insert_efforts_sql(chunk.len()));
            let mut params = Vec::with_capacity(2 + 4 * chunk.len());
            params.extend([id, Param::Int(version)]);
            for effort in chunk {
                params
                    .extend([effort.distance_mm, effort.elapsed_ds, effort.start_ds, effort.end_ds].map(Param::BigInt));
            }
            self.execute(sql, &params).await?;
        }
        Ok(())
    }

    async fn sync_efforts(
        &mut self,
        activity: ActivityId,
        user: UserId,
        sport: Sport,
        visibility: Visibility,
        started_at_us: i64,
    ) -> RepoResult<()> {
        self.execute(
            "UPDATE best_efforts SET user_id = $2, sport = $3, visibility = $4, started_at_us = $5 \
             WHERE activity_id = $1",
            &[
                Param::Uuid(activity.as_uuid()),
                Param::Uuid(user.as_uuid()),
                Param::Text(sport.as_str()),
                Param::Text(visibility.as_str()),
                Param::BigInt(started_at_us),
            ],
        )
        .await?;
        Ok(())
    }

    async fn efforts_of(&mut self, activity: ActivityId) -> RepoResult<Vec<BestEffort>> {
        const SQL: &str = "SELECT CAST(distance_mm AS BIGINT), CAST(elapsed_ds AS BIGINT), CAST(start_ds AS BIGINT), \
                           CAST(end_ds AS BIGINT) FROM best_efforts WHERE activity_id = $1 ORDER BY distance_mm";
        self.fetch_all(SQL, &[Param::Uuid(activity.as_uuid())], |cols| {
            Ok(BestEffort {
                distance_mm: cols.big_int()?,
                elapsed_ds: cols.big_int()?,
                start_ds: cols.big_int()?,
                end_ds: cols.big_int()?,
            })
        })
        .await
    }

    async fn best_of(
        &mut self,
        user: UserId,
        sport: Sport,
        distance_mm: i64,
        visibilities: &[Visibility],
        limit: u32,
    ) -> RepoResult<Vec<RankedEffort>> {
        // The three from the ranking index (its order: no sort, whatever the history), then
        // their activities' offsets by primary key.
        const SQL: &str = "SELECT b.activity_id, b.elapsed_ds, a.started_at_us, a.utc_offset_s FROM \
                           (SELECT activity_id, elapsed_ds, started_at_us FROM best_efforts \
                            WHERE user_id = $1 AND sport = $2 AND distance_mm = $3 AND visibility IN ($4, $5, $6) \
                            ORDER BY elapsed_ds, started_at_us, activity_id LIMIT $7) b \
                           JOIN activities a ON a.id = b.activity_id \
                           ORDER BY b.elapsed_ds, b.started_at_us, b.activity_id";
        let [a, b, c] = visible(visibilities);
        let params = [
            Param::Uuid(user.as_uuid()),
            Param::Text(sport.as_str()),
            Param::BigInt(distance_mm),
            a,
            b,
            c,
            Param::BigInt(i64::from(limit)),
        ];
        self.fetch_all(SQL, &params, |cols| {
            Ok(RankedEffort {
                activity_id: ActivityId::from_uuid(cols.uuid()?),
                elapsed_ds: cols.big_int()?,
                started_at: started(cols)?,
            })
        })
        .await
    }

    async fn longest(
        &mut self,
        user: UserId,
        sport: Sport,
        visibilities: &[Visibility],
    ) -> RepoResult<Option<Extreme>> {
        const SQL: &str = "SELECT id, distance_m, started_at_us, utc_offset_s FROM activities \
                           WHERE user_id = $1 AND sport = $2 AND visibility IN ($3, $4, $5) AND distance_m > 0 \
                           ORDER BY distance_m DESC, started_at_us LIMIT 1";
        self.extreme(SQL, user, sport, visibilities).await
    }

    async fn biggest_climb(
        &mut self,
        user: UserId,
        sport: Sport,
        visibilities: &[Visibility],
    ) -> RepoResult<Option<Extreme>> {
        const SQL: &str = "SELECT id, elevation_gain_m, started_at_us, utc_offset_s FROM activities \
                           WHERE user_id = $1 AND sport = $2 AND visibility IN ($3, $4, $5) AND elevation_gain_m > 0 \
                           ORDER BY elevation_gain_m DESC, started_at_us LIMIT 1";
        self.extreme(SQL, user, sport, visibilities).await
    }

    async fn adjust_month(
        &mut self,
        user: UserId,
        month_start: DayNumber,
        sport: Sport,
        delta: PeriodTotals,
    ) -> RepoResult<()> {
        let key = [Param::Uuid(user.as_uuid()), day(month_start), Param::Text(sport.as_str())];
        let count = self
            .fetch_one(
                "INSERT INTO stats_months (user_id, month_start, sport, activity_count, distance_mm, duration_s, gain_mm) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id, month_start, sport) DO UPDATE SET \
                 activity_count = stats_months.activity_count + excluded.activity_count, \
                 distance_mm = stats_months.distance_mm + excluded.distance_mm, \
                 duration_s = stats_months.duration_s + excluded.duration_s, \
                 gain_mm = stats_months.gain_mm + excluded.gain_mm \
                 RETURNING CAST(activity_count AS BIGINT)",
                &[
                    key[0],
                    key[1],
                    key[2],
                    Param::BigInt(delta.activities),
                    Param::BigInt(delta.distance_mm),
                    Param::BigInt(delta.duration_s),
                    Param::BigInt(delta.gain_mm),
                ],
                |cols| Ok(cols.big_int()?),
            )
            .await?;
        if count < 0 {
            return Err(corrupt("month count", (user, month_start, count)));
        }
        if count == 0 {
            self.execute("DELETE FROM stats_months WHERE user_id = $1 AND month_start = $2 AND sport = $3", &key)
                .await?;
        }
        Ok(())
    }

    async fn months(
        &mut self,
        user: UserId,
        first: DayNumber,
        last: DayNumber,
        sport: Option<Sport>,
    ) -> RepoResult<Vec<(DayNumber, PeriodTotals)>> {
        // One index range of the primary key; "all sports" adds up at most six rows a month.
        const SQL: &str = "SELECT month_start, CAST(SUM(activity_count) AS BIGINT), CAST(SUM(distance_mm) AS BIGINT), \
                           CAST(SUM(duration_s) AS BIGINT), CAST(SUM(gain_mm) AS BIGINT) FROM stats_months \
                           WHERE user_id = $1 AND month_start >= $2 AND month_start <= $3 \
                           AND ($4 = 'all' OR sport = $4) GROUP BY month_start ORDER BY month_start";
        let sport = sport.map_or("all", |s| s.as_str());
        self.fetch_all(SQL, &[Param::Uuid(user.as_uuid()), day(first), day(last), Param::Text(sport)], |cols| {
            let month = DayNumber::new(cols.int()?);
            Ok((
                month,
                PeriodTotals {
                    activities: cols.big_int()?,
                    distance_mm: cols.big_int()?,
                    duration_s: cols.big_int()?,
                    gain_mm: cols.big_int()?,
                },
            ))
        })
        .await
    }

    async fn activities_needing_efforts(
        &mut self,
        version: i32,
        user: Option<UserId>,
        after: Option<ActivityId>,
        limit: u32,
    ) -> RepoResult<Vec<ActivityId>> {
        const SQL: &str = "SELECT a.id FROM activities a WHERE a.track IS NOT NULL \
                           AND ($1 IS NULL OR a.user_id = $1) AND ($2 IS NULL OR a.id > $2) \
                           AND (a.efforts_version IS NULL OR a.efforts_version < $3) \
                           ORDER BY a.id LIMIT $4";
        let params = [
            Param::OptUuid(user.map(|u| u.as_uuid())),
            Param::OptUuid(after.map(|a| a.as_uuid())),
            Param::Int(version),
            Param::BigInt(i64::from(limit)),
        ];
        self.fetch_all(SQL, &params, |cols| Ok(ActivityId::from_uuid(cols.uuid()?))).await
    }
}
