//! The home feed: the caller's own activities and their friends' `friends` and `public` ones,
//! newest first, in keyset pages.
//!
//! 1. The caller's friend ids come from a per-user cache keyed by their `social_version`
//!    (read with the session), so a new friend or a block shows on the very next request and
//!    a hit costs no query.
//! 2. Friends are cut into chunks of `chunk_size`; the toolkit's bounded fan-out
//!    ([`try_map_concurrent`]) runs at most `concurrency` chunk queries at once, each on its own
//!    pooled connection, each returning its top `limit + 1` rows after the cursor with
//!    visibility filtered in SQL before every per-friend LIMIT. The caller's own page is one
//!    more run of the same fan-out.
//! 3. [`merge_newest_first`] (pure, in `domain`) k-way merges the runs and keeps `limit`; the
//!    extra row says whether another page exists.
//! 4. Everything runs under the request's deadline. If any chunk fails or times out the page
//!    fails (503/504) and the rest are cancelled: a page that silently skipped a friend would
//!    hand out a cursor past that friend's items, and they would never be shown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use stride_concurrency::{Deadline, try_map_concurrent};
use stride_domain::{Activity, ActivityCursor, Profile, UserId, merge_newest_first};
use stride_repository::{ActivityRepo, FeedRepo, ProfileRepo, RelationshipRepo, Store};

use crate::{Caller, ServiceError, ServiceResult};

/// How the feed fans out; operator settings (see README).
#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// Friends per chunk query. Each chunk is one statement of per-friend index scans.
    pub chunk_size: usize,
    /// Chunk queries in flight at once for one feed page; each holds a pooled connection.
    pub concurrency: usize,
    /// Users whose friend ids are cached.
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
}

impl FeedConfig {
    /// Three quarters of the pool (at most 8) for one page's chunks: a chunk holds its
    /// connection for about a millisecond, and on 2 cores 8 in flight beat 5 (1.60× over
    /// sequential chunks at 2,000 friends against 1.51–1.58×), while a quarter of the pool stays
    /// free for everything else.
    pub fn for_pool_size(pool_size: u32) -> Self {
        Self { concurrency: (pool_size as usize * 3 / 4).clamp(1, 8), ..Self::default() }
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self { chunk_size: 100, concurrency: 4, cache_capacity: 100_000, cache_ttl: Duration::from_secs(600) }
    }
}

/// One feed item: the activity and who did it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub activity: Activity,
    pub author: Profile,
}

/// One page of the feed, newest first.
pub type FeedPage = stride_domain::Page<FeedItem, ActivityCursor>;

/// How a page's runs are fetched; the product uses [`Strategy::FanOut`], the others exist to
/// be measured against it (`cargo xtask bench feed`) and checked equal to it (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Chunks run concurrently, at most `concurrency` at once.
    FanOut,
    /// The same chunk queries, one after another on one connection.
    Sequential,
    /// One statement naming every friend: `user_id IN (…) … ORDER BY … LIMIT n + 1`.
    SingleQuery,
    /// One statement of per-friend top-K scans over every friend (the chunk query with one
    /// chunk; SQLite caps one statement at 400 friends, past which it runs several in turn).
    SingleTopK,
}

#[derive(Clone)]
pub struct FeedService<S> {
    store: S,
    config: FeedConfig,
    /// Keyed by (user, social version): a change of friendship makes a new key, and the old
    /// entry simply ages out. moka coalesces concurrent misses for one key.
    friend_ids: moka::future::Cache<(UserId, i64), Arc<Vec<UserId>>>,
    /// What others see of a route (privacy zones); `None` in benchmarks of the query alone.
    views: Option<crate::TrackViews<S>>,
}

impl<S: Store> FeedService<S> {
    pub fn new(store: S, config: FeedConfig) -> Self {
        let friend_ids =
            moka::future::Cache::builder().max_capacity(config.cache_capacity).time_to_live(config.cache_ttl).build();
        let config = FeedConfig {
            chunk_size: config.chunk_size.clamp(1, stride_repository::MAX_FEED_CHUNK),
            concurrency: config.concurrency.max(1),
            ..config
        };
        Self { store, config, friend_ids, views: None }
    }

    /// Routes in the feed are shown as their owners' privacy zones allow.
    pub(crate) fn with_track_views(self, views: crate::TrackViews<S>) -> Self {
        Self { views: Some(views), ..self }
    }

    pub fn config(&self) -> FeedConfig {
        self.config
    }

    /// One page of the caller's feed.
    pub async fn page(
        &self,
        deadline: Deadline,
        caller: &Caller,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> ServiceResult<FeedPage> {
        let mut page =
            self.page_with(Self::PRODUCT, deadline, caller.user.id, caller.social_version, after, limit).await?;
        if let Some(views) = &self.views {
            let mut activities: Vec<_> = page.items.iter_mut().map(|item| &mut item.activity).collect();
            views.show_to(deadline, caller.user.id, &mut activities).await?;
        }
        Ok(page)
    }

    /// What the product runs on this backend, chosen by measurement (`cargo xtask bench feed`,
    /// figures in README). On PostgreSQL the concurrent fan-out: each chunk is work on another
    /// server process, so chunks run in parallel on the server's cores, and per-friend top-K
    /// scans keep a page's cost independent of how long friends' histories are. On SQLite one
    /// `IN (…)` statement: the engine runs in our process on a blocking thread per connection,
    /// there is no network wait for concurrency to overlap, and SQLite's per-statement cost for a
    /// compound of per-friend scans made every top-K form 5–13× slower than the one statement.
    pub const PRODUCT: Strategy = match S::BACKEND {
        stride_repository::Backend::Sqlite => Strategy::SingleQuery,
        stride_repository::Backend::Postgres => Strategy::FanOut,
    };

    /// A page fetched with `strategy`; every strategy returns the same page.
    pub async fn page_with(
        &self,
        strategy: Strategy,
        deadline: Deadline,
        viewer: UserId,
        social_version: i64,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> ServiceResult<FeedPage> {
        let friends = self.friend_ids(deadline, viewer, social_version).await?;
        let overfetch = limit + 1;
        let own = async {
            let mut uow = self.store.read(deadline).await?;
            Ok::<_, ServiceError>(uow.list_activities(viewer, after, overfetch).await?)
        };
        let theirs = async {
            match strategy {
                Strategy::FanOut => {
                    // Owned chunks and a store clone per call: the futures borrow nothing, which
                    // keeps them `Send` for any lifetime (what axum's handlers need).
                    let chunks: Vec<Vec<UserId>> = friends.chunks(self.config.chunk_size).map(<[_]>::to_vec).collect();
                    let store = self.store.clone();
                    try_map_concurrent(chunks, self.config.concurrency, move |chunk| {
                        let store = store.clone();
                        async move {
                            let mut uow = store.read(deadline).await?;
                            Ok::<_, ServiceError>(uow.feed_chunk(&chunk, after, overfetch).await?)
                        }
                    })
                    .await
                }
                Strategy::Sequential => {
                    let mut uow = self.store.read(deadline).await?;
                    let mut runs = Vec::new();
                    for chunk in friends.chunks(self.config.chunk_size) {
                        runs.push(uow.feed_chunk(chunk, after, overfetch).await?);
                    }
                    Ok(runs)
                }
                Strategy::SingleQuery => {
                    let mut uow = self.store.read(deadline).await?;
                    Ok(vec![uow.feed_reference(&friends, after, overfetch).await?])
                }
                Strategy::SingleTopK => {
                    let mut uow = self.store.read(deadline).await?;
                    Ok(vec![uow.feed_chunk(&friends, after, overfetch).await?])
                }
            }
        };
        // The caller's own run and the friends' runs are fetched at the same time; the first
        // failure drops the other.
        let (own, mut runs) = tokio::try_join!(own, theirs)?;
        runs.push(own);
        let merged = merge_newest_first(runs, limit as usize);
        let authors = self.authors(deadline, &merged.items).await?;
        let items = merged
            .items
            .into_iter()
            .map(|activity| {
                let author = authors
                    .get(&activity.user_id)
                    .cloned()
                    .ok_or_else(|| ServiceError::Internal(format!("no profile for {}", activity.user_id)))?;
                Ok(FeedItem { activity, author })
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(FeedPage { items, next_cursor: merged.next_cursor })
    }

    /// The viewer's friends, from the cache when their social version has not moved.
    async fn friend_ids(&self, deadline: Deadline, viewer: UserId, version: i64) -> ServiceResult<Arc<Vec<UserId>>> {
        self.friend_ids
            .try_get_with((viewer, version), async {
                let mut uow = self.store.read(deadline).await?;
                let mut ids = uow.friend_ids(viewer).await?;
                // A stable order makes chunks (and their statements) the same from one page to
                // the next.
                ids.sort_unstable();
                Ok::<_, ServiceError>(Arc::new(ids))
            })
            .await
            .map_err(|shared: Arc<ServiceError>| (*shared).clone())
    }

    /// The profiles of a page's authors (at most `limit` distinct people): one query.
    async fn authors(&self, deadline: Deadline, items: &[Activity]) -> ServiceResult<HashMap<UserId, Profile>> {
        let mut ids: Vec<UserId> = items.iter().map(|a| a.user_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut uow = self.store.read(deadline).await?;
        Ok(uow.profiles(&ids).await?.into_iter().map(|p| (p.id, p)).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use stride_domain::Visibility;
    use stride_repository::RepoError;
    use stride_repository::mocks::{MockStore, MockUnitOfWork, MockUnits, ready};
    use stride_repository::testing::deadline;

    use super::*;
    use crate::test_support::{activity_of, person};

    /// A page that silently skipped a chunk would hand out a cursor past that chunk's items,
    /// and they would never be shown: the first failing chunk fails the page.
    #[tokio::test]
    async fn a_failing_chunk_fails_the_whole_page_and_stops_the_rest() {
        let reader = person("reader");
        let friend = person("friend");
        let friends: Vec<UserId> = vec![friend.id, UserId::new(), UserId::new()];
        let chunks = Arc::new(AtomicUsize::new(0));
        let mut units = MockUnits::new();
        let (ids, seen) = (friends.clone(), chunks.clone());
        units.expect_open().returning(move |_| {
            let mut unit = MockUnitOfWork::new();
            let ids = ids.clone();
            unit.expect_friend_ids().returning(move |_| ready(Ok(ids.clone())));
            unit.expect_list_activities().returning(|_, _, _| ready(Ok(Vec::new())));
            let (seen, friend) = (seen.clone(), friend.clone());
            unit.expect_feed_chunk().returning(move |_, _, _| {
                // The second chunk's database is gone.
                if seen.fetch_add(1, Ordering::SeqCst) == 1 {
                    ready(Err(RepoError::Unavailable("connection refused".into())))
                } else {
                    ready(Ok(vec![activity_of(&friend, Visibility::Public)]))
                }
            });
            unit.expect_profiles().returning(|_| ready(Ok(Vec::new())));
            Ok(unit)
        });
        let config = FeedConfig { chunk_size: 1, concurrency: 1, ..FeedConfig::default() };
        let feed = FeedService::new(MockStore::new(units), config);
        let page = feed.page_with(Strategy::FanOut, deadline(), reader.id, 0, None, 20).await;
        assert!(matches!(page, Err(ServiceError::Unavailable(_))), "{page:?}");
        assert_eq!(chunks.load(Ordering::SeqCst), 2, "no chunk starts after the failure");
    }
}
