//! How two people stand: friend requests, friendships (two rows, one per side) and blocks.
//!
//! Every write that changes how two people stand first calls [`RelationshipRepo::lock_pair`],
//! which bumps both users' `social_version` in id order: on PostgreSQL that takes the two row
//! locks in one global order (so concurrent accepts, cancels and unfriends of one pair
//! serialise instead of deadlocking), and on both backends it moves the version that caches of
//! the pair's friend lists are keyed by.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{
    BlockedUser, Connection, FriendRequest, FriendRequestId, ListCursor, RequestDirection, Tie, UserId,
};

use super::{decode_connection, decode_request, list_keyset};
use crate::codec::{from_micros, micros};
use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

pub trait RelationshipRepo {
    /// How `a` and `b` stand: blocked (either way), friends, or neither. Two primary-key probes.
    fn tie(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<Tie>> + Send;
    /// Bumps both users' `social_version`, locking their rows in id order. Every write that
    /// changes how two people stand calls this first.
    fn lock_pair(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<()>> + Send;
    /// A user's `social_version`, the key of their friend-list cache.
    fn social_version(&mut self, user: UserId) -> impl Future<Output = RepoResult<Option<i64>>> + Send;

    fn insert_friend_request(
        &mut self,
        id: FriendRequestId,
        from: UserId,
        to: UserId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// The pending request from `from` to `to`, if any.
    fn request_between(
        &mut self,
        from: UserId,
        to: UserId,
    ) -> impl Future<Output = RepoResult<Option<FriendRequestId>>> + Send;
    fn friend_request(&mut self, id: FriendRequestId)
    -> impl Future<Output = RepoResult<Option<FriendRequest>>> + Send;
    fn delete_friend_request(&mut self, id: FriendRequestId) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Removes pending requests in both directions between `a` and `b`.
    fn delete_requests_between(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<()>> + Send;
    fn friend_requests(
        &mut self,
        user: UserId,
        direction: RequestDirection,
        after: Option<ListCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<FriendRequest>>> + Send;
    fn pending_outgoing(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Records one sent request for the daily limit and forgets sends older than `forget_before`.
    fn record_request_send(
        &mut self,
        user: UserId,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// How many requests `user` sent since `since`, and the oldest of them.
    fn request_sends_since(
        &mut self,
        user: UserId,
        since: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<(u64, Option<DateTime<Utc>>)>> + Send;

    fn insert_friendship(
        &mut self,
        a: UserId,
        b: UserId,
        since: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Returns whether they were friends.
    fn delete_friendship(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<bool>> + Send;
    fn friend_count(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Newest friendship first, ties by the friend's id descending.
    fn friends(
        &mut self,
        user: UserId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Connection>>> + Send;
    /// Every friend's id: what the feed fans out over (at most the friend limit).
    fn friend_ids(&mut self, user: UserId) -> impl Future<Output = RepoResult<Vec<UserId>>> + Send;

    /// Returns whether the block is new.
    fn insert_block(
        &mut self,
        blocker: UserId,
        blocked: UserId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
    fn delete_block(&mut self, blocker: UserId, blocked: UserId) -> impl Future<Output = RepoResult<bool>> + Send;
    /// Since when `blocker` blocks `blocked`, if they do.
    fn block_since(
        &mut self,
        blocker: UserId,
        blocked: UserId,
    ) -> impl Future<Output = RepoResult<Option<DateTime<Utc>>>> + Send;
    /// Whom `blocker` blocks, newest first, each with whether they block `blocker` too.
    fn blocks(
        &mut self,
        blocker: UserId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<BlockedUser>>> + Send;
}

impl<DB: Dialect> RelationshipRepo for SqlxUnitOfWork<DB> {
    async fn tie(&mut self, a: UserId, b: UserId) -> RepoResult<Tie> {
        const SQL: &str = "SELECT \
             (SELECT COUNT(*) FROM blocks WHERE (blocker = $1 AND blocked = $2) OR (blocker = $2 AND blocked = $1)), \
             (SELECT COUNT(*) FROM friendships WHERE user_id = $1 AND friend_id = $2)";
        let (blocks, friends) = self
            .fetch_one(SQL, &[Param::Uuid(a.as_uuid()), Param::Uuid(b.as_uuid())], |cols| {
                Ok((cols.big_int()?, cols.big_int()?))
            })
            .await?;
        Ok(if blocks > 0 {
            Tie::Blocked
        } else if friends > 0 {
            Tie::Friends
        } else {
            Tie::None
        })
    }

    async fn lock_pair(&mut self, a: UserId, b: UserId) -> RepoResult<()> {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        for user in [first, second] {
            self.execute(
                "UPDATE users SET social_version = social_version + 1 WHERE id = $1",
                &[Param::Uuid(user.as_uuid())],
            )
            .await?;
        }
        Ok(())
    }

    async fn social_version(&mut self, user: UserId) -> RepoResult<Option<i64>> {
        self.fetch_optional("SELECT social_version FROM users WHERE id = $1", &[Param::Uuid(user.as_uuid())], |cols| {
            Ok(cols.big_int()?)
        })
        .await
    }

    async fn insert_friend_request(
        &mut self,
        id: FriendRequestId,
        from: UserId,
        to: UserId,
        at: DateTime<Utc>,
    ) -> RepoResult<()> {
        self.execute(
            "INSERT INTO friend_requests (id, from_user, to_user, created_at_us) VALUES ($1, $2, $3, $4)",
            &[Param::Uuid(id.as_uuid()), Param::Uuid(from.as_uuid()), Param::Uuid(to.as_uuid()), micros(at)],
        )
        .await?;
        Ok(())
    }

    async fn request_between(&mut self, from: UserId, to: UserId) -> RepoResult<Option<FriendRequestId>> {
        self.fetch_optional(
            "SELECT id FROM friend_requests WHERE from_user = $1 AND to_user = $2",
            &[Param::Uuid(from.as_uuid()), Param::Uuid(to.as_uuid())],
            |cols| Ok(FriendRequestId::from_uuid(cols.uuid()?)),
        )
        .await
    }

    async fn friend_request(&mut self, id: FriendRequestId) -> RepoResult<Option<FriendRequest>> {
        const SQL: &str = "SELECT r.id, r.created_at_us, f.id, f.username, f.display_name, \
             t.id, t.username, t.display_name \
             FROM friend_requests r JOIN users f ON f.id = r.from_user JOIN users t ON t.id = r.to_user \
             WHERE r.id = $1";
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_request).await
    }

    async fn delete_friend_request(&mut self, id: FriendRequestId) -> RepoResult<bool> {
        let removed = self.execute("DELETE FROM friend_requests WHERE id = $1", &[Param::Uuid(id.as_uuid())]).await?;
        Ok(removed > 0)
    }

    async fn delete_requests_between(&mut self, a: UserId, b: UserId) -> RepoResult<()> {
        self.execute(
            "DELETE FROM friend_requests WHERE (from_user = $1 AND to_user = $2) OR (from_user = $2 AND to_user = $1)",
            &[Param::Uuid(a.as_uuid()), Param::Uuid(b.as_uuid())],
        )
        .await?;
        Ok(())
    }

    async fn friend_requests(
        &mut self,
        user: UserId,
        direction: RequestDirection,
        after: Option<ListCursor>,
        limit: u32,
    ) -> RepoResult<Vec<FriendRequest>> {
        const INCOMING: &str = "SELECT r.id, r.created_at_us, f.id, f.username, f.display_name, \
             t.id, t.username, t.display_name \
             FROM friend_requests r JOIN users f ON f.id = r.from_user JOIN users t ON t.id = r.to_user \
             WHERE r.to_user = $1 AND (r.created_at_us < $2 OR (r.created_at_us = $2 AND r.id < $3)) \
             ORDER BY r.created_at_us DESC, r.id DESC LIMIT $4";
        const OUTGOING: &str = "SELECT r.id, r.created_at_us, f.id, f.username, f.display_name, \
             t.id, t.username, t.display_name \
             FROM friend_requests r JOIN users f ON f.id = r.from_user JOIN users t ON t.id = r.to_user \
             WHERE r.from_user = $1 AND (r.created_at_us < $2 OR (r.created_at_us = $2 AND r.id < $3)) \
             ORDER BY r.created_at_us DESC, r.id DESC LIMIT $4";
        let sql = match direction {
            RequestDirection::Incoming => INCOMING,
            RequestDirection::Outgoing => OUTGOING,
        };
        let (at, id) = list_keyset(after);
        let params = [Param::Uuid(user.as_uuid()), Param::BigInt(at), Param::Uuid(id), Param::BigInt(limit.into())];
        self.fetch_all(sql, &params, decode_request).await
    }

    async fn pending_outgoing(&mut self, user: UserId) -> RepoResult<u64> {
        let count = self
            .fetch_one(
                "SELECT COUNT(*) FROM friend_requests WHERE from_user = $1",
                &[Param::Uuid(user.as_uuid())],
                |c| Ok(c.big_int()?),
            )
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn record_request_send(
        &mut self,
        user: UserId,
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> RepoResult<()> {
        let user = Param::Uuid(user.as_uuid());
        self.execute(
            "DELETE FROM friend_request_sends WHERE user_id = $1 AND sent_at_us < $2",
            &[user, micros(forget_before)],
        )
        .await?;
        self.execute("INSERT INTO friend_request_sends (user_id, sent_at_us) VALUES ($1, $2)", &[user, micros(at)])
            .await?;
        Ok(())
    }

    async fn request_sends_since(
        &mut self,
        user: UserId,
        since: DateTime<Utc>,
    ) -> RepoResult<(u64, Option<DateTime<Utc>>)> {
        const SQL: &str = "SELECT COUNT(*), COALESCE(MIN(sent_at_us), -1) FROM friend_request_sends \
             WHERE user_id = $1 AND sent_at_us >= $2";
        let (count, oldest) = self
            .fetch_one(SQL, &[Param::Uuid(user.as_uuid()), micros(since)], |cols| {
                Ok((cols.big_int()?, cols.big_int()?))
            })
            .await?;
        let oldest = if oldest < 0 { None } else { Some(from_micros(oldest)?) };
        Ok((count.max(0) as u64, oldest))
    }

    async fn insert_friendship(&mut self, a: UserId, b: UserId, since: DateTime<Utc>) -> RepoResult<()> {
        self.execute(
            "INSERT INTO friendships (user_id, friend_id, since_us) VALUES ($1, $2, $3), ($2, $1, $3)",
            &[Param::Uuid(a.as_uuid()), Param::Uuid(b.as_uuid()), micros(since)],
        )
        .await?;
        Ok(())
    }

    async fn delete_friendship(&mut self, a: UserId, b: UserId) -> RepoResult<bool> {
        let removed = self
            .execute(
                "DELETE FROM friendships WHERE (user_id = $1 AND friend_id = $2) OR (user_id = $2 AND friend_id = $1)",
                &[Param::Uuid(a.as_uuid()), Param::Uuid(b.as_uuid())],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn friend_count(&mut self, user: UserId) -> RepoResult<u64> {
        let count = self
            .fetch_one("SELECT COUNT(*) FROM friendships WHERE user_id = $1", &[Param::Uuid(user.as_uuid())], |c| {
                Ok(c.big_int()?)
            })
            .await?;
        Ok(count.max(0) as u64)
    }

    async fn friends(&mut self, user: UserId, after: Option<ListCursor>, limit: u32) -> RepoResult<Vec<Connection>> {
        const SQL: &str = "SELECT f.since_us, users.id, users.username, users.display_name \
             FROM friendships f JOIN users ON users.id = f.friend_id \
             WHERE f.user_id = $1 AND (f.since_us < $2 OR (f.since_us = $2 AND f.friend_id < $3)) \
             ORDER BY f.since_us DESC, f.friend_id DESC LIMIT $4";
        let (at, id) = list_keyset(after);
        let params = [Param::Uuid(user.as_uuid()), Param::BigInt(at), Param::Uuid(id), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, decode_connection).await
    }

    async fn friend_ids(&mut self, user: UserId) -> RepoResult<Vec<UserId>> {
        self.fetch_all("SELECT friend_id FROM friendships WHERE user_id = $1", &[Param::Uuid(user.as_uuid())], |c| {
            Ok(UserId::from_uuid(c.uuid()?))
        })
        .await
    }

    async fn insert_block(&mut self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> RepoResult<bool> {
        let inserted = self
            .execute(
                "INSERT INTO blocks (blocker, blocked, since_us) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[Param::Uuid(blocker.as_uuid()), Param::Uuid(blocked.as_uuid()), micros(at)],
            )
            .await?;
        Ok(inserted > 0)
    }

    async fn delete_block(&mut self, blocker: UserId, blocked: UserId) -> RepoResult<bool> {
        let removed = self
            .execute(
                "DELETE FROM blocks WHERE blocker = $1 AND blocked = $2",
                &[Param::Uuid(blocker.as_uuid()), Param::Uuid(blocked.as_uuid())],
            )
            .await?;
        Ok(removed > 0)
    }

    async fn block_since(&mut self, blocker: UserId, blocked: UserId) -> RepoResult<Option<DateTime<Utc>>> {
        let since = self
            .fetch_optional(
                "SELECT since_us FROM blocks WHERE blocker = $1 AND blocked = $2",
                &[Param::Uuid(blocker.as_uuid()), Param::Uuid(blocked.as_uuid())],
                |cols| Ok(cols.big_int()?),
            )
            .await?;
        since.map(from_micros).transpose()
    }

    async fn blocks(&mut self, blocker: UserId, after: Option<ListCursor>, limit: u32) -> RepoResult<Vec<BlockedUser>> {
        const SQL: &str = "SELECT b.since_us, users.id, users.username, users.display_name, \
             (SELECT COUNT(*) FROM blocks back WHERE back.blocker = b.blocked AND back.blocked = b.blocker) \
             FROM blocks b JOIN users ON users.id = b.blocked \
             WHERE b.blocker = $1 AND (b.since_us < $2 OR (b.since_us = $2 AND b.blocked < $3)) \
             ORDER BY b.since_us DESC, b.blocked DESC LIMIT $4";
        let (at, id) = list_keyset(after);
        let params = [Param::Uuid(blocker.as_uuid()), Param::BigInt(at), Param::Uuid(id), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, |cols| {
            let Connection { user, since } = decode_connection(cols)?;
            Ok(BlockedUser::new(user, since, cols.big_int()? > 0))
        })
        .await
    }
}
