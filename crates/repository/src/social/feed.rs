//! The feed's queries: one chunk of friends' newest activities, the single-query reference it
//! is checked and measured against, and one owner's activities as a viewer may see them.

use std::future::Future;

use stride_domain::{Activity, ActivityCursor, UserId};

use super::{LATERAL_CHUNK_SQL, chunk_sql, keyset, reference_sql};
use crate::activities::{activity_columns, decode_activity};
use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

/// The most authors one chunk query may name. SQLite refuses compound statements of more than
/// 500 parts; the feed's chunks are far smaller (see `FeedConfig`).
pub const MAX_FEED_CHUNK: usize = 400;

pub trait FeedRepo {
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

impl<DB: Dialect> FeedRepo for SqlxUnitOfWork<DB> {
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
