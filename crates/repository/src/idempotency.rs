//! Idempotency keys: a retried create answers with what the first attempt made.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{ActivityId, UserId};

use crate::codec::micros;
use crate::dialect::{Dialect, Param};
use crate::{RepoError, RepoResult, SqlxUnitOfWork};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// A digest of the first request, so a key reused for a different request is refused.
    pub fingerprint: Vec<u8>,
    pub activity_id: ActivityId,
}

/// Where a key applies and which records still count.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyScope<'a> {
    pub user: UserId,
    pub key: &'a str,
    /// Records made before this instant have expired.
    pub not_before: DateTime<Utc>,
}

pub trait IdempotencyRepo {
    /// The live record for the scope's key, if any.
    fn find_idempotency_key(
        &mut self,
        scope: IdempotencyScope<'_>,
    ) -> impl Future<Output = RepoResult<Option<IdempotencyRecord>>> + Send;
    /// Records the scope's key at `now`; an expired record is replaced. `Conflict` if a live
    /// record exists (a concurrent request with the same key won the race).
    fn record_idempotency_key(
        &mut self,
        scope: IdempotencyScope<'_>,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Deletes at most `limit` keys of each kind (activity creates, photo uploads, imports) recorded
    /// before `not_before`; returns how many.
    fn delete_idempotency_keys_before(
        &mut self,
        not_before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
}

impl<DB: Dialect> IdempotencyRepo for SqlxUnitOfWork<DB> {
    async fn find_idempotency_key(&mut self, scope: IdempotencyScope<'_>) -> RepoResult<Option<IdempotencyRecord>> {
        self.fetch_optional(
            "SELECT fingerprint, activity_id FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2 AND created_at_us >= $3",
            &[Param::Uuid(scope.user.as_uuid()), Param::Text(scope.key), micros(scope.not_before)],
            |cols| {
                Ok(IdempotencyRecord { fingerprint: cols.bytes()?, activity_id: ActivityId::from_uuid(cols.uuid()?) })
            },
        )
        .await
    }

    async fn record_idempotency_key(
        &mut self,
        scope: IdempotencyScope<'_>,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> RepoResult<()> {
        // Only an expired record may be overwritten; a live one means another request with
        // this key committed first.
        let written = self
            .execute(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, activity_id, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, key) DO UPDATE \
                 SET fingerprint = excluded.fingerprint, activity_id = excluded.activity_id, \
                     created_at_us = excluded.created_at_us \
                 WHERE idempotency_keys.created_at_us < $6",
                &[
                    Param::Uuid(scope.user.as_uuid()),
                    Param::Text(scope.key),
                    Param::Bytes(&record.fingerprint),
                    Param::Uuid(record.activity_id.as_uuid()),
                    micros(now),
                    micros(scope.not_before),
                ],
            )
            .await?;
        if written == 0 { Err(RepoError::Conflict { constraint: "idempotency_keys_pkey".into() }) } else { Ok(()) }
    }

    async fn delete_idempotency_keys_before(&mut self, not_before: DateTime<Utc>, limit: u32) -> RepoResult<u64> {
        let params = [micros(not_before), Param::BigInt(i64::from(limit))];
        let activities = self
            .execute(
                "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
                 (SELECT user_id, key FROM idempotency_keys WHERE created_at_us < $1 LIMIT $2)",
                &params,
            )
            .await?;
        let uploads = self
            .execute(
                "DELETE FROM photo_upload_keys WHERE (user_id, key) IN \
                 (SELECT user_id, key FROM photo_upload_keys WHERE created_at_us < $1 LIMIT $2)",
                &params,
            )
            .await?;
        let imports = self
            .execute(
                "DELETE FROM import_keys WHERE (user_id, key) IN \
                 (SELECT user_id, key FROM import_keys WHERE created_at_us < $1 LIMIT $2)",
                &params,
            )
            .await?;
        Ok(activities + uploads + imports)
    }
}
