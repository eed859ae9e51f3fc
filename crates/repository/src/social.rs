//! Friendships, friend requests, blocks, and the feed's chunk queries.
//!
//! A friendship is two rows, one per side. Every write that changes how two people stand first
//! calls [`SocialRepo::lock_pair`], which bumps both users' `social_version` in id order: on
//! PostgreSQL that takes the two row locks in one global order (so concurrent accepts, cancels
//! and unfriends of one pair serialise instead of deadlocking), and on both backends it moves
//! the version that caches of the pair's friend lists are keyed by.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use stride_domain::{
    Activity, ActivityCursor, Connection, DisplayName, FriendRequest, FriendRequestId, ListCursor, Profile,
    RequestDirection, Tie, UserId, Username,
};

use crate::activities::{activity_columns, decode_activity};
use crate::codec::{corrupt, from_micros, micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

/// The most authors one chunk query may name. SQLite refuses compound statements of more than
/// 500 parts; the feed's chunks are far smaller (see `FeedConfig`).
pub const MAX_FEED_CHUNK: usize = 400;

pub trait SocialRepo {
    fn profile_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
    fn profile_by_username(&mut self, username: &Username) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
    /// The profiles of `ids` that exist, in no particular order (at most [`MAX_FEED_CHUNK`]).
    fn profiles(&mut self, ids: &[UserId]) -> impl Future<Output = RepoResult<Vec<Profile>>> + Send;
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
    fn blocks(
        &mut self,
        blocker: UserId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Connection>>> + Send;

    /// One chunk of the feed: for each author, their newest `limit` activities a friend may see
    /// (`friends` and `public`, filtered before each author's LIMIT) strictly after `after`,
    /// then the newest `limit` of those. Each author is its own index range scan on
    /// `activities_user_started`, so the cost is authors × limit rows whatever their history.
    fn feed_chunk(
        &mut self,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
    /// The single-query reference the feed is checked and measured against:
    /// `user_id IN (…) AND visibility <> 'private' AND (started_at, id) < cursor ORDER BY … LIMIT n`.
    fn feed_reference(
        &mut self,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
    /// An owner's activities that `visible` covers, newest first, strictly after `after`.
    fn activities_visible(
        &mut self,
        owner: UserId,
        visible: &[stride_domain::Visibility],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
}

fn decode_profile<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Profile> {
    let id = UserId::from_uuid(cols.uuid()?);
    let username = cols.text()?;
    let display_name = cols.text()?;
    Ok(Profile {
        id,
        username: Username::parse(&username).map_err(|_| corrupt("username", &username))?,
        display_name: DisplayName::parse(&display_name).map_err(|_| corrupt("display_name", &display_name))?,
    })
}

fn decode_request<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<FriendRequest> {
    let id = FriendRequestId::from_uuid(cols.uuid()?);
    let created_at = from_micros(cols.big_int()?)?;
    Ok(FriendRequest { id, created_at, from: decode_profile(cols)?, to: decode_profile(cols)? })
}

fn decode_connection<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Connection> {
    let since = from_micros(cols.big_int()?)?;
    Ok(Connection { since, user: decode_profile(cols)? })
}

/// "Before any item": the keyset bound of a first page, so first and later pages share one
/// statement (every real key sorts below it).
fn keyset(after: Option<ActivityCursor>) -> (i64, uuid::Uuid) {
    after.map_or((i64::MAX, uuid::Uuid::max()), |c| (c.started_at_utc_micros, c.id.as_uuid()))
}

fn list_keyset(after: Option<ListCursor>) -> (i64, uuid::Uuid) {
    after.map_or((i64::MAX, uuid::Uuid::max()), |c| (c.at_utc_micros, c.id))
}

/// Statement text built for a number of authors, made once per (shape, count) and kept: at
/// most [`MAX_FEED_CHUNK`] counts for the chunk and profile shapes, powers of two for the
/// reference, so the cache is bounded, and the driver's prepared statement cache (keyed by
/// text) reuses each plan.
pub(crate) fn statement(shape: &'static str, authors: usize, build: impl FnOnce() -> String) -> &'static str {
    static TEXTS: OnceLock<Mutex<HashMap<(&'static str, usize), &'static str>>> = OnceLock::new();
    let texts = TEXTS.get_or_init(Default::default);
    let mut texts = texts.lock().unwrap_or_else(|e| e.into_inner());
    texts.entry((shape, authors)).or_insert_with(|| Box::leak(build().into_boxed_str()))
}

/// `$1`, `$2`: the keyset; `$3`: the limit; `$4…`: the authors.
fn chunk_sql(authors: usize) -> &'static str {
    statement("chunk", authors, || {
        let per_author: Vec<String> = (0..authors)
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT {cols} FROM activities WHERE user_id = ${param} \
                     AND visibility <> 'private' \
                     AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
                     ORDER BY started_at_us DESC, id DESC LIMIT $3) AS a{i}",
                    cols = activity_columns!(),
                    param = i + 4,
                )
            })
            .collect();
        format!(
            "SELECT * FROM ({}) AS chunk ORDER BY started_at_us DESC, id DESC LIMIT $3",
            per_author.join(" UNION ALL ")
        )
    })
}

/// The chunk query where the engine takes arrays: `$1`, `$2` the keyset, `$3` the limit, `$4`
/// the authors.
const LATERAL_CHUNK_SQL: &str = concat!(
    "SELECT a.* FROM unnest($4::uuid[]) AS f(author) CROSS JOIN LATERAL (SELECT ",
    activity_columns!(),
    " FROM activities WHERE user_id = f.author AND visibility <> 'private' \
     AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
     ORDER BY started_at_us DESC, id DESC LIMIT $3) AS a \
     ORDER BY a.started_at_us DESC, a.id DESC LIMIT $3"
);

fn reference_sql(authors: usize) -> &'static str {
    statement("reference", authors, || {
        let list: Vec<String> = (0..authors).map(|i| format!("${}", i + 4)).collect();
        format!(
            "SELECT {cols} FROM activities WHERE user_id IN ({list}) AND visibility <> 'private' \
             AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
             ORDER BY started_at_us DESC, id DESC LIMIT $3",
            cols = activity_columns!(),
            list = list.join(", "),
        )
    })
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    async fn authored_page(
        &mut self,
        sql: &'static str,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        let (at, id) = keyset(after);
        let mut params = Vec::with_capacity(authors.len() + 3);
        params.extend([Param::BigInt(at), Param::Uuid(id), Param::BigInt(i64::from(limit))]);
        params.extend(authors.iter().map(|a| Param::Uuid(a.as_uuid())));
        self.fetch_all(sql, &params, decode_activity).await
    }
}

impl<DB: Dialect> SocialRepo for SqlxUnitOfWork<DB> {
    async fn profile_by_id(&mut self, id: UserId) -> RepoResult<Option<Profile>> {
        const SQL: &str = "SELECT users.id, users.username, users.display_name FROM users WHERE id = $1";
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_profile).await
    }

    async fn profile_by_username(&mut self, username: &Username) -> RepoResult<Option<Profile>> {
        const SQL: &str = "SELECT users.id, users.username, users.display_name FROM users WHERE username = $1";
        self.fetch_optional(SQL, &[Param::Text(username.as_str())], decode_profile).await
    }

    async fn profiles(&mut self, ids: &[UserId]) -> RepoResult<Vec<Profile>> {
        let mut found = Vec::with_capacity(ids.len());
        for part in ids.chunks(MAX_FEED_CHUNK) {
            let sql = statement("profiles", part.len(), || {
                let list: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                format!(
                    "SELECT users.id, users.username, users.display_name FROM users WHERE id IN ({})",
                    list.join(", ")
                )
            });
            let params: Vec<Param<'_>> = part.iter().map(|id| Param::Uuid(id.as_uuid())).collect();
            found.extend(self.fetch_all(sql, &params, decode_profile).await?);
        }
        Ok(found)
    }

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

    async fn blocks(&mut self, blocker: UserId, after: Option<ListCursor>, limit: u32) -> RepoResult<Vec<Connection>> {
        const SQL: &str = "SELECT b.since_us, users.id, users.username, users.display_name \
             FROM blocks b JOIN users ON users.id = b.blocked \
             WHERE b.blocker = $1 AND (b.since_us < $2 OR (b.since_us = $2 AND b.blocked < $3)) \
             ORDER BY b.since_us DESC, b.blocked DESC LIMIT $4";
        let (at, id) = list_keyset(after);
        let params = [Param::Uuid(blocker.as_uuid()), Param::BigInt(at), Param::Uuid(id), Param::BigInt(limit.into())];
        self.fetch_all(SQL, &params, decode_connection).await
    }

    async fn feed_chunk(
        &mut self,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        if DB::HAS_ARRAYS {
            // One statement text for any number of authors: a nested loop of per-author index
            // scans, planned once per connection.
            if authors.is_empty() {
                return Ok(Vec::new());
            }
            let (at, id) = keyset(after);
            let ids: Vec<uuid::Uuid> = authors.iter().map(|a| a.as_uuid()).collect();
            let params = [Param::BigInt(at), Param::Uuid(id), Param::BigInt(i64::from(limit)), Param::Uuids(&ids)];
            return self.fetch_all(LATERAL_CHUNK_SQL, &params, decode_activity).await;
        }
        let mut rows = Vec::new();
        for part in authors.chunks(MAX_FEED_CHUNK) {
            rows.extend(self.authored_page(chunk_sql(part.len()), part, after, limit).await?);
        }
        if authors.len() > MAX_FEED_CHUNK {
            rows.sort_by(stride_domain::feed_order);
            rows.truncate(limit as usize);
        }
        Ok(rows)
    }

    async fn feed_reference(
        &mut self,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        let Some(last) = authors.last() else { return Ok(Vec::new()) };
        // Padded to a power of two by repeating an author (a repeat in `IN (…)` changes
        // nothing): at most 14 statement texts for up to 5,000 friends, not one per count.
        let padded = authors.len().next_power_of_two().max(8);
        let mut list = authors.to_vec();
        list.resize(padded, *last);
        self.authored_page(reference_sql(padded), &list, after, limit).await
    }

    async fn activities_visible(
        &mut self,
        owner: UserId,
        visible: &[stride_domain::Visibility],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        const SQL: &str = concat!(
            "SELECT ",
            activity_columns!(),
            " FROM activities WHERE user_id = $1 AND visibility IN ($2, $3, $4) \
             AND (started_at_us < $5 OR (started_at_us = $5 AND id < $6)) \
             ORDER BY started_at_us DESC, id DESC LIMIT $7"
        );
        let Some(first) = visible.first() else { return Ok(Vec::new()) };
        // Padded with repeats: one statement text for every visibility set.
        let pick = |i: usize| Param::Text(visible.get(i).unwrap_or(first).as_str());
        let (at, id) = keyset(after);
        let params = [
            Param::Uuid(owner.as_uuid()),
            pick(0),
            pick(1),
            pick(2),
            Param::BigInt(at),
            Param::Uuid(id),
            Param::BigInt(limit.into()),
        ];
        self.fetch_all(SQL, &params, decode_activity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_texts_are_built_once_per_shape_and_count() {
        let first = chunk_sql(3);
        assert!(std::ptr::eq(first, chunk_sql(3)));
        assert_eq!(first.matches("UNION ALL").count(), 2);
        assert!(first.contains("$6") && !first.contains("$7"));
        assert!(!std::ptr::eq(first, reference_sql(3)));
    }
}
