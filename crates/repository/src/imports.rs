//! Imports and their items, the files tracks came from, and the fence an import job's writes
//! carry.
//!
//! An item moves out of `queued` once, by a statement that matches `state = 'queued'`, and
//! its import's counter moves in the same transaction; whoever moves it second (a rescued
//! attempt, a cancel) changes nothing. Each of a job's item transactions first locks its own
//! job row at its attempt ([`ImportRepo::hold_lease`]): an attempt whose lease was taken over
//! finds no row and writes nothing, and a rescuing claim waits until the item commits.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{ActivityId, Import, ImportId, ImportItem, ImportState, ItemState, JobId, Problem, UserId};

use crate::codec::micros;
use crate::dialect::{Dialect, Param, read_for_update};
use crate::import_rows::{counter, decode_import, decode_item, decode_track_file};
use crate::{RepoError, RepoResult, SqlxUnitOfWork};

/// How an item ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Imported(ActivityId),
    /// The activity whose file had the same bytes.
    Duplicate(ActivityId),
    Failed(Problem),
}

/// The file a track came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub activity_id: ActivityId,
    pub user_id: UserId,
    pub sha256: Vec<u8>,
    pub name: String,
    pub blob_key: String,
    pub bytes: u64,
}

pub trait ImportRepo {
    fn insert_import(&mut self, import: &Import, items: &[ImportItem]) -> impl Future<Output = RepoResult<()>> + Send;
    fn import_by_id(&mut self, id: ImportId) -> impl Future<Output = RepoResult<Option<Import>>> + Send;
    /// The user's imports, newest first, strictly after `after` (created_at, id).
    fn list_imports(
        &mut self,
        user: UserId,
        after: Option<(DateTime<Utc>, ImportId)>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Import>>> + Send;
    /// Items in file order, from index `from`.
    fn import_items(
        &mut self,
        import: ImportId,
        from: u32,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<ImportItem>>> + Send;
    /// Imports of `user` queued or running.
    fn active_imports(&mut self, user: UserId) -> impl Future<Output = RepoResult<u32>> + Send;
    /// Queued → running; whether it moved.
    fn start_import(&mut self, id: ImportId) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Ends an active import in `state`; whether it was still active.
    fn finish_import(
        &mut self,
        id: ImportId,
        state: ImportState,
        error: Option<&Problem>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Cancels an active import and its items not yet started; whether it was active.
    fn cancel_import(&mut self, id: ImportId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Moves a queued item to its outcome and counts it; whether it was still queued.
    fn settle_item(
        &mut self,
        import: ImportId,
        index: u32,
        outcome: &ItemOutcome,
        warnings: &[Problem],
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Fails every item still queued with `problem` (the import as a whole failed).
    fn fail_queued_items(
        &mut self,
        import: ImportId,
        problem: &Problem,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Locks the job row while `attempt` still owns it; `false` means the lease was lost.
    fn hold_lease(&mut self, job: JobId, attempt: u32) -> impl Future<Output = RepoResult<bool>> + Send;
    fn find_import_key(
        &mut self,
        user: UserId,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Option<ImportId>>> + Send;
    /// `Conflict` when a live record exists.
    fn record_import_key(
        &mut self,
        user: UserId,
        key: &str,
        import: ImportId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Whether any import item names the blob (photos' gc keeps those).
    fn blob_named_by_import(&mut self, key: &str) -> impl Future<Output = RepoResult<bool>> + Send;
    /// The activity of `user` whose file had these bytes, if it still exists.
    fn activity_with_file(
        &mut self,
        user: UserId,
        sha256: &[u8],
    ) -> impl Future<Output = RepoResult<Option<ActivityId>>> + Send;
    /// `Conflict` when the user already has a file with these bytes.
    fn insert_track_file(&mut self, file: &TrackFile) -> impl Future<Output = RepoResult<()>> + Send;
    fn track_file(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Option<TrackFile>>> + Send;
    /// Records an archive's items and its total, once: `false` (and nothing written) when an
    /// earlier attempt already did.
    fn plan_import(&mut self, id: ImportId, items: &[ImportItem]) -> impl Future<Output = RepoResult<bool>> + Send;
    /// The running attempt's items per second.
    fn record_progress(&mut self, id: ImportId, rate_per_s: f64) -> impl Future<Output = RepoResult<()>> + Send;
    /// The activity of `user` imported from Strava's activity `strava_id`, if it still exists.
    fn activity_with_strava_id(
        &mut self,
        user: UserId,
        strava_id: &str,
    ) -> impl Future<Output = RepoResult<Option<ActivityId>>> + Send;
    /// `Conflict` when the user already has an activity from this Strava activity.
    fn insert_strava_id(
        &mut self,
        user: UserId,
        strava_id: &str,
        activity: ActivityId,
    ) -> impl Future<Output = RepoResult<()>> + Send;
}

impl<DB: Dialect> ImportRepo for SqlxUnitOfWork<DB> {
    async fn insert_import(&mut self, import: &Import, items: &[ImportItem]) -> RepoResult<()> {
        self.execute(
            "INSERT INTO imports (id, user_id, state, sport, visibility, total, created_at_us, archive_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                Param::Uuid(import.id.as_uuid()),
                Param::Uuid(import.user_id.as_uuid()),
                Param::Text(import.state.as_str()),
                Param::OptText(import.sport.as_deref()),
                Param::Text(&import.visibility),
                Param::OptBigInt(import.total.map(i64::from)),
                micros(import.created_at),
                Param::OptText(import.archive_key.as_deref()),
            ],
        )
        .await?;
        self.insert_items(items).await
    }

    async fn import_by_id(&mut self, id: ImportId) -> RepoResult<Option<Import>> {
        const SQL: &str = "SELECT id, user_id, state, sport, visibility, total, imported, duplicate, failed, \
                           cancelled, error_code, error_message, created_at_us, finished_at_us, archive_key, rate_per_s FROM imports WHERE id = $1";
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_import).await
    }

    async fn list_imports(
        &mut self,
        user: UserId,
        after: Option<(DateTime<Utc>, ImportId)>,
        limit: u32,
    ) -> RepoResult<Vec<Import>> {
        const SQL: &str = "SELECT id, user_id, state, sport, visibility, total, imported, duplicate, failed, \
                           cancelled, error_code, error_message, created_at_us, finished_at_us, archive_key, rate_per_s FROM imports \
                           WHERE user_id = $1 AND (created_at_us < $2 OR (created_at_us = $2 AND id < $3)) \
                           ORDER BY created_at_us DESC, id DESC LIMIT $4";
        let (at, id) = after.map_or((i64::MAX, uuid::Uuid::max()), |(at, id)| (at.timestamp_micros(), id.as_uuid()));
        let params = [Param::Uuid(user.as_uuid()), Param::BigInt(at), Param::Uuid(id), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, decode_import).await
    }

    async fn import_items(&mut self, import: ImportId, from: u32, limit: u32) -> RepoResult<Vec<ImportItem>> {
        const SQL: &str = "SELECT import_id, idx, name, blob_key, bytes, state, activity_id, error_code, \
                           error_message, warnings FROM import_items WHERE import_id = $1 AND idx >= $2 \
                           ORDER BY idx LIMIT $3";
        let params = [Param::Uuid(import.as_uuid()), Param::Int(from as i32), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, decode_item).await
    }

    async fn active_imports(&mut self, user: UserId) -> RepoResult<u32> {
        const SQL: &str = "SELECT COUNT(*) FROM imports WHERE user_id = $1 AND state IN ('queued', 'running')";
        let n = self.fetch_optional(SQL, &[Param::Uuid(user.as_uuid())], |cols| Ok(cols.big_int()?)).await?;
        Ok(n.unwrap_or(0) as u32)
    }

    async fn start_import(&mut self, id: ImportId) -> RepoResult<bool> {
        let sql = "UPDATE imports SET state = 'running' WHERE id = $1 AND state = 'queued'";
        Ok(self.execute(sql, &[Param::Uuid(id.as_uuid())]).await? > 0)
    }

    async fn finish_import(
        &mut self,
        id: ImportId,
        state: ImportState,
        error: Option<&Problem>,
        now: DateTime<Utc>,
    ) -> RepoResult<bool> {
        let sql = "UPDATE imports SET state = $2, error_code = $3, error_message = $4, finished_at_us = $5, \
                   rate_per_s = NULL \
                   WHERE id = $1 AND state IN ('queued', 'running')";
        let params = [
            Param::Uuid(id.as_uuid()),
            Param::Text(state.as_str()),
            Param::OptText(error.map(|e| e.code.as_str())),
            Param::OptText(error.map(|e| e.message.as_str())),
            micros(now),
        ];
        Ok(self.execute(sql, &params).await? > 0)
    }

    async fn cancel_import(&mut self, id: ImportId, now: DateTime<Utc>) -> RepoResult<bool> {
        if !self.finish_import(id, ImportState::Cancelled, None, now).await? {
            return Ok(false);
        }
        let id = Param::Uuid(id.as_uuid());
        let cancelled = self
            .execute("UPDATE import_items SET state = 'cancelled' WHERE import_id = $1 AND state = 'queued'", &[id])
            .await?;
        self.execute(
            "UPDATE imports SET cancelled = cancelled + $2 WHERE id = $1",
            &[id, Param::BigInt(cancelled as i64)],
        )
        .await?;
        Ok(true)
    }

    async fn settle_item(
        &mut self,
        import: ImportId,
        index: u32,
        outcome: &ItemOutcome,
        warnings: &[Problem],
    ) -> RepoResult<bool> {
        let (state, activity, error) = match outcome {
            ItemOutcome::Imported(id) => (ItemState::Imported, Some(id.as_uuid()), None),
            ItemOutcome::Duplicate(id) => (ItemState::Duplicate, Some(id.as_uuid()), None),
            ItemOutcome::Failed(problem) => (ItemState::Failed, None, Some(problem)),
        };
        let warnings = serde_json::to_string(warnings).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let moved = self
            .execute(
                "UPDATE import_items SET state = $3, activity_id = $4, error_code = $5, error_message = $6, \
                 warnings = $7 WHERE import_id = $1 AND idx = $2 AND state = 'queued'",
                &[
                    Param::Uuid(import.as_uuid()),
                    Param::Int(index as i32),
                    Param::Text(state.as_str()),
                    Param::OptUuid(activity),
                    Param::OptText(error.map(|e| e.code.as_str())),
                    Param::OptText(error.map(|e| e.message.as_str())),
                    Param::Text(&warnings),
                ],
            )
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        self.execute(counter(state), &[Param::Uuid(import.as_uuid())]).await?;
        Ok(true)
    }

    async fn fail_queued_items(&mut self, import: ImportId, problem: &Problem) -> RepoResult<u64> {
        let id = Param::Uuid(import.as_uuid());
        let failed = self
            .execute(
                "UPDATE import_items SET state = 'failed', error_code = $2, error_message = $3 \
                 WHERE import_id = $1 AND state = 'queued'",
                &[id, Param::Text(&problem.code), Param::Text(&problem.message)],
            )
            .await?;
        self.execute("UPDATE imports SET failed = failed + $2 WHERE id = $1", &[id, Param::BigInt(failed as i64)])
            .await?;
        Ok(failed)
    }

    async fn hold_lease(&mut self, job: JobId, attempt: u32) -> RepoResult<bool> {
        const LOCKING: &str = "SELECT id FROM jobs WHERE id = $1 AND attempt = $2 AND state = 'running' FOR UPDATE";
        const PLAIN: &str = "SELECT id FROM jobs WHERE id = $1 AND attempt = $2 AND state = 'running'";
        let sql = read_for_update::<DB>(LOCKING, PLAIN);
        let params = [Param::Uuid(job.as_uuid()), Param::Int(attempt as i32)];
        Ok(self.fetch_optional(sql, &params, |cols| Ok(cols.uuid()?)).await?.is_some())
    }

    async fn find_import_key(
        &mut self,
        user: UserId,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> RepoResult<Option<ImportId>> {
        const SQL: &str = "SELECT import_id FROM import_keys WHERE user_id = $1 AND key = $2 AND created_at_us >= $3";
        let params = [Param::Uuid(user.as_uuid()), Param::Text(key), micros(not_before)];
        self.fetch_optional(SQL, &params, |cols| Ok(ImportId::from_uuid(cols.uuid()?))).await
    }

    async fn record_import_key(
        &mut self,
        user: UserId,
        key: &str,
        import: ImportId,
        not_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> RepoResult<()> {
        // Only an expired record may be overwritten.
        let written = self
            .execute(
                "INSERT INTO import_keys (user_id, key, import_id, created_at_us) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, key) DO UPDATE SET import_id = excluded.import_id, \
                 created_at_us = excluded.created_at_us WHERE import_keys.created_at_us < $5",
                &[
                    Param::Uuid(user.as_uuid()),
                    Param::Text(key),
                    Param::Uuid(import.as_uuid()),
                    micros(now),
                    micros(not_before),
                ],
            )
            .await?;
        if written == 0 { Err(RepoError::Conflict { constraint: "import_keys_pkey".into() }) } else { Ok(()) }
    }

    async fn blob_named_by_import(&mut self, key: &str) -> RepoResult<bool> {
        let sql = "SELECT 1 FROM import_items WHERE blob_key = $1 UNION ALL SELECT 1 FROM imports \
                   WHERE archive_key = $1 AND state IN ('queued', 'running') LIMIT 1";
        Ok(self.fetch_optional(sql, &[Param::Text(key)], |_| Ok(())).await?.is_some())
    }

    async fn activity_with_file(&mut self, user: UserId, sha256: &[u8]) -> RepoResult<Option<ActivityId>> {
        let sql = "SELECT activity_id FROM track_files WHERE user_id = $1 AND sha256 = $2";
        let params = [Param::Uuid(user.as_uuid()), Param::Bytes(sha256)];
        self.fetch_optional(sql, &params, |cols| Ok(ActivityId::from_uuid(cols.uuid()?))).await
    }

    async fn insert_track_file(&mut self, file: &TrackFile) -> RepoResult<()> {
        self.execute(
            "INSERT INTO track_files (activity_id, user_id, sha256, name, blob_key, bytes) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Param::Uuid(file.activity_id.as_uuid()),
                Param::Uuid(file.user_id.as_uuid()),
                Param::Bytes(&file.sha256),
                Param::Text(&file.name),
                Param::Text(&file.blob_key),
                Param::BigInt(file.bytes as i64),
            ],
        )
        .await?;
        Ok(())
    }

    async fn track_file(&mut self, activity: ActivityId) -> RepoResult<Option<TrackFile>> {
        let sql = "SELECT activity_id, user_id, sha256, name, blob_key, bytes FROM track_files WHERE activity_id = $1";
        self.fetch_optional(sql, &[Param::Uuid(activity.as_uuid())], decode_track_file).await
    }

    async fn plan_import(&mut self, id: ImportId, items: &[ImportItem]) -> RepoResult<bool> {
        let sql = "UPDATE imports SET total = $2 WHERE id = $1 AND total IS NULL";
        if self.execute(sql, &[Param::Uuid(id.as_uuid()), Param::BigInt(items.len() as i64)]).await? == 0 {
            return Ok(false);
        }
        self.insert_items(items).await?;
        Ok(true)
    }

    async fn record_progress(&mut self, id: ImportId, rate_per_s: f64) -> RepoResult<()> {
        let sql = "UPDATE imports SET rate_per_s = $2 WHERE id = $1 AND state = 'running'";
        self.execute(sql, &[Param::Uuid(id.as_uuid()), Param::Real(rate_per_s)]).await?;
        Ok(())
    }

    async fn activity_with_strava_id(&mut self, user: UserId, strava_id: &str) -> RepoResult<Option<ActivityId>> {
        let sql = "SELECT activity_id FROM strava_activities WHERE user_id = $1 AND strava_id = $2";
        let params = [Param::Uuid(user.as_uuid()), Param::Text(strava_id)];
        self.fetch_optional(sql, &params, |cols| Ok(ActivityId::from_uuid(cols.uuid()?))).await
    }

    async fn insert_strava_id(&mut self, user: UserId, strava_id: &str, activity: ActivityId) -> RepoResult<()> {
        self.execute(
            "INSERT INTO strava_activities (user_id, strava_id, activity_id) VALUES ($1, $2, $3)",
            &[Param::Uuid(user.as_uuid()), Param::Text(strava_id), Param::Uuid(activity.as_uuid())],
        )
        .await?;
        Ok(())
    }
}
