//! The job queue's table: enqueue inside any unit of work, claim in batches, and fenced
//! transitions out of `running`.
//!
//! Fencing: every statement that moves a running job (heartbeat, complete, fail, reschedule)
//! matches `id AND attempt AND state = 'running'` and reports whether it changed a row. Zero
//! rows means this attempt no longer owns the job — its lease expired and another attempt
//! claimed it, or an operator cancelled it — and the caller must drop the job's effects. Since
//! a claim increments `attempt`, a stale worker can never touch the row of a newer attempt.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{Job, JobId, JobState, Lease, NewJob};

use crate::codec::{corrupt, from_micros, micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

/// Jobs of one kind waiting to run, for the queue-depth metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub kind: String,
    pub due: u64,
    /// When the longest-waiting due job became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

pub trait JobRepo {
    /// Adds a job in the caller's unit of work: rolled back, it never existed. Returns false
    /// when a job with the same unique key is not final yet (nothing is added).
    fn enqueue(&mut self, job: &NewJob, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Gives the waiting job (available or retryable, not running) with `unique_key` a fresh
    /// start: due at `now`, no attempt spent, `max_attempts` of them. What an enqueue that found
    /// the key taken does when the newer request supersedes the older; `false` when no job with
    /// the key is waiting (none, or it is running).
    fn renew_waiting(
        &mut self,
        unique_key: &str,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Claims up to `limit` due jobs of `kind` — available, retryable whose time has come, and
    /// running ones whose lease expired (the rescue) — as one step, each with `attempt + 1` and
    /// a lease until `lease_until`. A running job whose lease expired on its last allowed
    /// attempt is discarded instead, with the reason. Claimers never wait for each other:
    /// PostgreSQL skips rows another claim has locked; SQLite has one writer.
    fn claim(
        &mut self,
        kind: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Lease>>> + Send;
    /// Discards the running jobs of `kind` whose lease expired on their last allowed attempt
    /// (their worker died, stalled or was stopped), with the reason, and returns them so the
    /// runner can tell their handler. `claim` does this too; the runner calls it first to learn
    /// which jobs it was.
    fn discard_expired_last(
        &mut self,
        kind: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Vec<Job>>> + Send;
    /// How many jobs of `kind` with exactly this payload are not final yet.
    fn count_open(&mut self, kind: &str, payload: &str) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Extends the lease; false if the attempt lost it.
    fn heartbeat(
        &mut self,
        id: JobId,
        attempt: u32,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    fn complete(
        &mut self,
        id: JobId,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Completes many attempts at once, each fenced as `complete` is; returns how many still
    /// owned their job (the others lost their lease).
    fn complete_batch(
        &mut self,
        fences: &[(JobId, u32)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Records a failure: `retry_at` set makes the job retryable then, `None` discards it.
    fn fail(
        &mut self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Gives the attempt back: available again at `run_at`, the attempt not counted (a snooze,
    /// or a graceful shutdown releasing its leases).
    fn reschedule(
        &mut self,
        id: JobId,
        attempt: u32,
        run_at: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;

    fn job(&mut self, id: JobId) -> impl Future<Output = RepoResult<Option<Job>>> + Send;
    /// Newest first, optionally of one state and one kind.
    fn jobs(
        &mut self,
        state: Option<JobState>,
        kind: Option<String>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Job>>> + Send;
    /// (kind, state, count), ordered by kind then state.
    fn job_counts(&mut self) -> impl Future<Output = RepoResult<Vec<(String, JobState, u64)>>> + Send;
    fn queue_depths(&mut self, now: DateTime<Utc>) -> impl Future<Output = RepoResult<Vec<QueueDepth>>> + Send;
    /// An operator's retry: a final or retryable job becomes available now with fresh attempts.
    fn retry_job(&mut self, id: JobId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
    /// An operator's cancel of a job that is not final; a running attempt then loses its fence.
    fn cancel_job(&mut self, id: JobId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Deletes at most `limit` jobs that finished before `before`; returns how many.
    fn purge_finished_jobs(
        &mut self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
}

macro_rules! job_columns {
    () => {
        "id, kind, payload, state, attempt, max_attempts, run_at_us, lease_until_us, unique_key, last_error, \
         created_at_us, finished_at_us"
    };
}

/// The prefix of the `last_error` a rescue writes; `jobs show` and the rescue metric read it.
pub const RESCUE_NOTE: &str = "lease expired on attempt ";

fn optional_micros(value: Option<i64>) -> RepoResult<Option<DateTime<Utc>>> {
    value.map(from_micros).transpose()
}

fn decode_job<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Job> {
    let id = JobId::from_uuid(cols.uuid()?);
    let kind = cols.text()?;
    let payload = cols.text()?;
    let state = cols.text()?;
    let attempt = cols.int()?;
    let max_attempts = cols.int()?;
    Ok(Job {
        id,
        kind,
        payload,
        state: state.parse().map_err(|_| corrupt("job state", &state))?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt("attempt", attempt))?,
        max_attempts: u32::try_from(max_attempts).map_err(|_| corrupt("max_attempts", max_attempts))?,
        run_at: from_micros(cols.big_int()?)?,
        lease_until: optional_micros(cols.optional_big_int()?)?,
        unique_key: cols.optional_text()?,
        last_error: cols.optional_text()?,
        created_at: from_micros(cols.big_int()?)?,
        finished_at: optional_micros(cols.optional_big_int()?)?,
    })
}

fn attempt_param(attempt: u32) -> Param<'static> {
    Param::Int(i32::try_from(attempt).unwrap_or(i32::MAX))
}

impl<DB: Dialect> JobRepo for SqlxUnitOfWork<DB> {
    async fn enqueue(&mut self, job: &NewJob, now: DateTime<Utc>) -> RepoResult<bool> {
        // DO NOTHING without a target covers the partial unique index on `unique_key` on both
        // engines; the primary key never collides (fresh UUIDv7s).
        const SQL: &str = "INSERT INTO jobs (id, kind, payload, state, attempt, max_attempts, run_at_us, \
             unique_key, created_at_us) VALUES ($1, $2, $3, 'available', 0, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
        let inserted = self
            .execute(
                SQL,
                &[
                    Param::Uuid(job.id.as_uuid()),
                    Param::Text(&job.kind),
                    Param::Text(&job.payload),
                    attempt_param(job.max_attempts.max(1)),
                    micros(job.run_at),
                    job.unique_key.as_deref().map_or(Param::NullText, Param::Text),
                    micros(now),
                ],
            )
            .await?;
        // Delivered when this unit of work commits, never if it rolls back.
        if let (true, Some(notify)) = (inserted > 0, DB::NOTIFY_JOBS) {
            self.fetch_all(notify, &[Param::Text(&job.kind)], |_| Ok(())).await?;
        } else if inserted > 0 {
            self.job_enqueued(&job.kind);
        }
        Ok(inserted > 0)
    }

    async fn claim(
        &mut self,
        kind: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> RepoResult<Vec<Lease>> {
        // Two index ranges, each stopping at the limit: due jobs in order on the partial index
        // `jobs_due`, expired leases on `jobs_leases`. (One `OR` over both would read every row
        // of the kind's backlog on each claim.)
        const CLAIM_LOCKING: &str = concat!(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_until_us = $3, \
             last_error = CASE WHEN state = 'running' THEN 'lease expired on attempt ' || attempt ELSE last_error END \
             WHERE id IN (SELECT id FROM (\
               SELECT id FROM (SELECT id FROM jobs WHERE kind = $1 AND state IN ('available', 'retryable') \
                 AND run_at_us <= $2 ORDER BY run_at_us, id LIMIT $4 FOR UPDATE SKIP LOCKED) AS due \
               UNION ALL \
               SELECT id FROM (SELECT id FROM jobs WHERE kind = $1 AND state = 'running' AND lease_until_us < $2 \
                 LIMIT $4 FOR UPDATE SKIP LOCKED) AS expired) AS claimable LIMIT $4) RETURNING ",
            job_columns!()
        );
        const CLAIM_SINGLE_WRITER: &str = concat!(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_until_us = $3, \
             last_error = CASE WHEN state = 'running' THEN 'lease expired on attempt ' || attempt ELSE last_error END \
             WHERE id IN (SELECT id FROM (\
               SELECT id FROM (SELECT id FROM jobs WHERE kind = $1 AND state IN ('available', 'retryable') \
                 AND run_at_us <= $2 ORDER BY run_at_us, id LIMIT $4) AS due \
               UNION ALL \
               SELECT id FROM (SELECT id FROM jobs WHERE kind = $1 AND state = 'running' AND lease_until_us < $2 \
                 LIMIT $4) AS expired) AS claimable LIMIT $4) RETURNING ",
            job_columns!()
        );
        self.discard_expired_last(kind, now).await?;
        let sql = crate::dialect::read_for_update::<DB>(CLAIM_LOCKING, CLAIM_SINGLE_WRITER);
        let mut jobs = self
            .fetch_all(
                sql,
                &[Param::Text(kind), micros(now), micros(lease_until), Param::BigInt(limit.into())],
                decode_job,
            )
            .await?;
        // RETURNING gives no order; run them oldest first.
        jobs.sort_by_key(|job| (job.run_at, job.id));
        Ok(jobs.into_iter().map(|job| Lease { job, lease_until }).collect())
    }

    async fn discard_expired_last(&mut self, kind: &str, now: DateTime<Utc>) -> RepoResult<Vec<Job>> {
        const SQL: &str = concat!(
            "UPDATE jobs SET state = 'discarded', lease_until_us = NULL, finished_at_us = $2, \
             last_error = 'lease expired on its last allowed attempt (the worker died, stalled or was stopped)' \
             WHERE kind = $1 AND state = 'running' AND lease_until_us < $2 AND attempt >= max_attempts RETURNING ",
            job_columns!()
        );
        self.fetch_all(SQL, &[Param::Text(kind), micros(now)], decode_job).await
    }

    async fn count_open(&mut self, kind: &str, payload: &str) -> RepoResult<u64> {
        const SQL: &str = "SELECT COUNT(*) FROM jobs WHERE kind = $1 AND payload = $2 \
                           AND state IN ('available', 'running', 'retryable')";
        let count = self.fetch_one(SQL, &[Param::Text(kind), Param::Text(payload)], |cols| Ok(cols.big_int()?)).await?;
        u64::try_from(count).map_err(|_| corrupt("count", count))
    }

    async fn heartbeat(&mut self, id: JobId, attempt: u32, lease_until: DateTime<Utc>) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE jobs SET lease_until_us = $3 WHERE id = $1 AND attempt = $2 AND state = 'running'",
                &[Param::Uuid(id.as_uuid()), attempt_param(attempt), micros(lease_until)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn complete(&mut self, id: JobId, attempt: u32, now: DateTime<Utc>) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE jobs SET state = 'completed', lease_until_us = NULL, finished_at_us = $3 \
                 WHERE id = $1 AND attempt = $2 AND state = 'running'",
                &[Param::Uuid(id.as_uuid()), attempt_param(attempt), micros(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn complete_batch(&mut self, fences: &[(JobId, u32)], now: DateTime<Utc>) -> RepoResult<u64> {
        if fences.is_empty() {
            return Ok(0);
        }
        if DB::HAS_ARRAYS {
            let ids: Vec<uuid::Uuid> = fences.iter().map(|(id, _)| id.as_uuid()).collect();
            let attempts: Vec<i32> = fences.iter().map(|(_, a)| i32::try_from(*a).unwrap_or(i32::MAX)).collect();
            return self
                .execute(
                    "UPDATE jobs SET state = 'completed', lease_until_us = NULL, finished_at_us = $3 \
                     FROM unnest($1::uuid[], $2::int[]) AS fence(id, attempt) \
                     WHERE jobs.id = fence.id AND jobs.attempt = fence.attempt AND jobs.state = 'running'",
                    &[Param::Uuids(&ids), Param::Ints(&attempts), micros(now)],
                )
                .await;
        }
        // No arrays: a row-value list, padded to a power of two by repeating a fence (a repeat
        // changes nothing), so statement texts stay few.
        let padded = fences.len().next_power_of_two();
        let sql = crate::statements::statement("complete_batch", padded, || {
            let rows: Vec<String> = (0..padded).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
            format!(
                "UPDATE jobs SET state = 'completed', lease_until_us = NULL, finished_at_us = $1 \
                 WHERE state = 'running' AND (id, attempt) IN (VALUES {})",
                rows.join(", ")
            )
        });
        let last = fences[fences.len() - 1];
        let mut params = Vec::with_capacity(1 + 2 * padded);
        params.push(micros(now));
        for (id, attempt) in fences.iter().chain(std::iter::repeat_n(&last, padded - fences.len())) {
            params.push(Param::Uuid(id.as_uuid()));
            params.push(attempt_param(*attempt));
        }
        self.execute(sql, &params).await
    }

    async fn fail(
        &mut self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> RepoResult<bool> {
        let fence = [Param::Uuid(id.as_uuid()), attempt_param(attempt), Param::Text(error)];
        let changed = match retry_at {
            Some(at) => {
                self.execute(
                    "UPDATE jobs SET state = 'retryable', run_at_us = $4, lease_until_us = NULL, last_error = $3 \
                     WHERE id = $1 AND attempt = $2 AND state = 'running'",
                    &[fence[0], fence[1], fence[2], micros(at)],
                )
                .await?
            }
            None => {
                self.execute(
                    "UPDATE jobs SET state = 'discarded', lease_until_us = NULL, last_error = $3, finished_at_us = $4 \
                     WHERE id = $1 AND attempt = $2 AND state = 'running'",
                    &[fence[0], fence[1], fence[2], micros(now)],
                )
                .await?
            }
        };
        Ok(changed > 0)
    }

    async fn renew_waiting(&mut self, unique_key: &str, max_attempts: u32, now: DateTime<Utc>) -> RepoResult<bool> {
        const SQL: &str = "UPDATE jobs SET state = 'available', attempt = 0, max_attempts = $2, run_at_us = $3, \
                           last_error = NULL WHERE unique_key = $1 AND state IN ('available', 'retryable') \
                           RETURNING kind";
        let params = [Param::Text(unique_key), attempt_param(max_attempts.max(1)), micros(now)];
        let renewed = self.fetch_optional(SQL, &params, |cols| Ok(cols.text()?)).await?;
        if let (Some(kind), Some(notify)) = (&renewed, DB::NOTIFY_JOBS) {
            self.fetch_all(notify, &[Param::Text(kind)], |_| Ok(())).await?;
        } else if let Some(kind) = &renewed {
            self.job_enqueued(kind);
        }
        Ok(renewed.is_some())
    }

    async fn reschedule(&mut self, id: JobId, attempt: u32, run_at: DateTime<Utc>) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at_us = $3, lease_until_us = NULL \
                 WHERE id = $1 AND attempt = $2 AND state = 'running'",
                &[Param::Uuid(id.as_uuid()), attempt_param(attempt), micros(run_at)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn job(&mut self, id: JobId) -> RepoResult<Option<Job>> {
        const SQL: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_job).await
    }

    async fn jobs(&mut self, state: Option<JobState>, kind: Option<String>, limit: u32) -> RepoResult<Vec<Job>> {
        const SQL: &str = concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR kind = $2) \
             ORDER BY created_at_us DESC, id DESC LIMIT $3"
        );
        let state = state.map_or("", |s| s.as_str());
        let params = [Param::Text(state), Param::Text(kind.as_deref().unwrap_or("")), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, decode_job).await
    }

    async fn job_counts(&mut self) -> RepoResult<Vec<(String, JobState, u64)>> {
        self.fetch_all(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
            &[],
            |cols| {
                let kind = cols.text()?;
                let state = cols.text()?;
                let count = cols.big_int()?;
                Ok((kind, state.parse().map_err(|_| corrupt("job state", &state))?, count.max(0) as u64))
            },
        )
        .await
    }

    async fn queue_depths(&mut self, now: DateTime<Utc>) -> RepoResult<Vec<QueueDepth>> {
        self.fetch_all(
            "SELECT kind, COUNT(*), MIN(run_at_us) FROM jobs \
             WHERE state IN ('available', 'retryable') AND run_at_us <= $1 GROUP BY kind ORDER BY kind",
            &[micros(now)],
            |cols| {
                let kind = cols.text()?;
                let due = cols.big_int()?;
                Ok(QueueDepth { kind, due: due.max(0) as u64, oldest_due: optional_micros(cols.optional_big_int()?)? })
            },
        )
        .await
    }

    async fn retry_job(&mut self, id: JobId, now: DateTime<Utc>) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE jobs SET state = 'available', attempt = 0, run_at_us = $2, lease_until_us = NULL, \
                 finished_at_us = NULL WHERE id = $1 AND state IN ('completed', 'discarded', 'cancelled', 'retryable')",
                &[Param::Uuid(id.as_uuid()), micros(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn cancel_job(&mut self, id: JobId, now: DateTime<Utc>) -> RepoResult<bool> {
        let changed = self
            .execute(
                "UPDATE jobs SET state = 'cancelled', lease_until_us = NULL, finished_at_us = $2, \
                 last_error = COALESCE(last_error, 'cancelled by an operator') \
                 WHERE id = $1 AND state IN ('available', 'retryable', 'running')",
                &[Param::Uuid(id.as_uuid()), micros(now)],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn purge_finished_jobs(&mut self, before: DateTime<Utc>, limit: u32) -> RepoResult<u64> {
        self.execute(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at_us < $1 LIMIT $2)",
            &[micros(before), Param::BigInt(limit.into())],
        )
        .await
    }
}
