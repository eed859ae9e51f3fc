//! Shared abuse limits and the server's own keys: state every replica must agree on.
//!
//! A limit is one row per key holding a GCRA bucket ([`RateLimit`]); [`LimitRepo::take`] is one
//! upsert whose `SET` applies `RateLimit::decide` in SQL and returns the verdict it wrote, so
//! two replicas taking the last token at once serialise on the row and exactly one passes.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{Admission, RateLimit};

use crate::codec::micros;
use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

pub trait LimitRepo {
    /// Takes a token from `key`'s bucket at `now` (creating it full), or is refused.
    fn take(
        &mut self,
        key: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Admission>> + Send;
    /// Forgets `key`: its bucket is full again (a successful login clears its failures).
    fn forget(&mut self, key: &str) -> impl Future<Output = RepoResult<()>> + Send;
    /// Gives back one token taken from `key` (an attempt that turned out not to count).
    fn give_back(&mut self, key: &str, limit: RateLimit) -> impl Future<Output = RepoResult<()>> + Send;
    /// Deletes at most `limit` buckets that are full again at `now` (a missing row means the
    /// same); returns how many.
    fn delete_full_buckets(&mut self, now: DateTime<Utc>, limit: u32) -> impl Future<Output = RepoResult<u64>> + Send;
    /// The secret stored under `name`, storing `candidate` first if there is none: the first
    /// replica to start makes the key, every other one reads it.
    fn server_key(&mut self, name: &str, candidate: &str) -> impl Future<Output = RepoResult<String>> + Send;
}

impl<DB: Dialect> LimitRepo for SqlxUnitOfWork<DB> {
    async fn take(&mut self, key: &str, limit: RateLimit, now: DateTime<Utc>) -> RepoResult<Admission> {
        // $2 now, $3 interval, $4 tolerance. Every SET expression reads the row as it was.
        const SQL: &str = "INSERT INTO rate_limits (key, tat_us, refused) VALUES ($1, $2 + $3, 0) \
                           ON CONFLICT (key) DO UPDATE SET \
                           refused = CASE WHEN rate_limits.tat_us - $2 > $4 THEN 1 ELSE 0 END, \
                           tat_us = CASE WHEN rate_limits.tat_us - $2 > $4 THEN rate_limits.tat_us \
                                         WHEN rate_limits.tat_us > $2 THEN rate_limits.tat_us + $3 \
                                         ELSE $2 + $3 END \
                           RETURNING tat_us, refused";
        let now_us = now.timestamp_micros();
        let params =
            [Param::Text(key), micros(now), Param::BigInt(limit.interval_us()), Param::BigInt(limit.tolerance_us())];
        let (tat_us, refused) = self.fetch_one(SQL, &params, |cols| Ok((cols.big_int()?, cols.int()?))).await?;
        Ok(if refused == 0 { Admission::Admitted } else { limit.refusal(tat_us, now_us) })
    }

    async fn forget(&mut self, key: &str) -> RepoResult<()> {
        self.execute("DELETE FROM rate_limits WHERE key = $1", &[Param::Text(key)]).await?;
        Ok(())
    }

    async fn give_back(&mut self, key: &str, limit: RateLimit) -> RepoResult<()> {
        let params = [Param::Text(key), Param::BigInt(limit.interval_us())];
        self.execute("UPDATE rate_limits SET tat_us = tat_us - $2 WHERE key = $1", &params).await?;
        Ok(())
    }

    async fn delete_full_buckets(&mut self, now: DateTime<Utc>, limit: u32) -> RepoResult<u64> {
        const SQL: &str = "DELETE FROM rate_limits WHERE key IN \
                           (SELECT key FROM rate_limits WHERE tat_us <= $1 LIMIT $2)";
        self.execute(SQL, &[micros(now), Param::BigInt(i64::from(limit))]).await
    }

    async fn server_key(&mut self, name: &str, candidate: &str) -> RepoResult<String> {
        self.execute(
            "INSERT INTO server_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[Param::Text(name), Param::Text(candidate)],
        )
        .await?;
        self.fetch_one("SELECT secret FROM server_keys WHERE name = $1", &[Param::Text(name)], |cols| Ok(cols.text()?))
            .await
    }
}
