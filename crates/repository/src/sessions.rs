//! Bearer sessions: a token's hash, whose it is, and until when.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{User, UserId};

use crate::codec::micros;
use crate::dialect::{Dialect, Param};
use crate::users::{decode_user, user_columns};
use crate::{RepoResult, SqlxUnitOfWork};

#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The user a live session belongs to, with their statistics and social versions read in the
/// same statement, so that a cached statistics read or friend list needs no query of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionUser {
    pub user: User,
    pub stats_version: i64,
    /// The key of the user's cached friend list (see `RelationshipRepo::lock_pair`).
    pub social_version: i64,
}

pub trait SessionRepo {
    fn insert_session(&mut self, session: &NewSession) -> impl Future<Output = RepoResult<()>> + Send;
    /// The user an unexpired session belongs to.
    fn user_by_session(
        &mut self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Option<SessionUser>>> + Send;
    /// Returns whether a session was removed.
    fn delete_session(&mut self, token_hash: &[u8; 32]) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Deletes at most `limit` sessions expired at `now`; returns how many.
    fn delete_expired_sessions(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
}

impl<DB: Dialect> SessionRepo for SqlxUnitOfWork<DB> {
    async fn insert_session(&mut self, session: &NewSession) -> RepoResult<()> {
        self.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at_us, expires_at_us) VALUES ($1, $2, $3, $4)",
            &[
                Param::Bytes(&session.token_hash),
                Param::Uuid(session.user_id.as_uuid()),
                micros(session.created_at),
                micros(session.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn user_by_session(&mut self, token_hash: &[u8; 32], now: DateTime<Utc>) -> RepoResult<Option<SessionUser>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            ", users.stats_version, users.social_version FROM sessions JOIN users ON users.id = sessions.user_id \
             WHERE sessions.token_hash = $1 AND sessions.expires_at_us > $2"
        );
        self.fetch_optional(SQL, &[Param::Bytes(token_hash), micros(now)], |cols| {
            Ok(SessionUser {
                user: decode_user(cols)?,
                stats_version: cols.big_int()?,
                social_version: cols.big_int()?,
            })
        })
        .await
    }

    async fn delete_session(&mut self, token_hash: &[u8; 32]) -> RepoResult<bool> {
        let removed = self.execute("DELETE FROM sessions WHERE token_hash = $1", &[Param::Bytes(token_hash)]).await?;
        Ok(removed > 0)
    }

    async fn delete_expired_sessions(&mut self, now: DateTime<Utc>, limit: u32) -> RepoResult<u64> {
        // Batched, so one purge never holds the (SQLite: only) writer for long.
        self.execute(
            "DELETE FROM sessions WHERE token_hash IN \
             (SELECT token_hash FROM sessions WHERE expires_at_us <= $1 LIMIT $2)",
            &[micros(now), Param::BigInt(i64::from(limit))],
        )
        .await
    }
}
