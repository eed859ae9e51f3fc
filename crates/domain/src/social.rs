//! Friendship and blocking as values, and the feed's merge.
//!
//! The rules that need no I/O live here: what a public profile shows, which requests a pair of
//! people may exchange, and how per-chunk feed pages become one page. Whether two people *are*
//! friends needs the database; services look it up and hand the answer to
//! [`Relationship::between`](crate::Relationship::between).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};

use crate::{Activity, ActivityCursor, DisplayName, FriendRequestId, User, UserId, Username};

/// What anyone who may see a user at all sees of them: no time zone, no creation date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
}

impl From<&User> for Profile {
    fn from(user: &User) -> Self {
        Self { id: user.id, username: user.username.clone(), display_name: user.display_name.clone() }
    }
}

/// A pending request from `from` to `to`; accepting it makes them friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub id: FriendRequestId,
    pub from: Profile,
    pub to: Profile,
    pub created_at: DateTime<Utc>,
}

/// Someone in a list of people (friends, blocked), with when that began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub user: Profile,
    pub since: DateTime<Utc>,
}

/// Someone the caller blocked, as the caller may see them. When they have blocked the caller
/// too, the caller learns nothing of them beyond the id they already hold: not their name as it
/// is now (a rename after their block must not reach the person they blocked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedUser {
    pub id: UserId,
    /// `None` when they blocked the caller as well.
    pub profile: Option<Profile>,
    pub since: DateTime<Utc>,
}

impl BlockedUser {
    pub fn new(profile: Profile, since: DateTime<Utc>, they_block_the_caller: bool) -> Self {
        Self { id: profile.id, profile: (!they_block_the_caller).then_some(profile), since }
    }
}

/// Which side of a pending request the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestDirection {
    #[default]
    Incoming,
    Outgoing,
}

/// How two people stand, as stored: at most one of these holds for a pair at a time (a block
/// ends a friendship, and friends have no pending request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tie {
    None,
    Friends,
    /// Either one blocked the other; the direction never changes what either sees.
    Blocked,
}

/// Why a friend request cannot be sent, decided before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRefusal {
    ToSelf,
    /// Unknown user, or a block in either direction: the same answer for both, so a block
    /// cannot be probed for.
    NotFound,
    AlreadyFriends,
    AlreadyPending,
}

/// What sending a request from `from` to `to` does, given how they stand and whether the
/// other side already asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A new pending request.
    Pending,
    /// They had already asked: the two become friends, and their request is consumed.
    AcceptTheirs,
}

/// The one decision behind `POST /friends/requests`.
pub fn decide_request(
    from: UserId,
    to: UserId,
    tie: Tie,
    already_asked: bool,
    they_asked: bool,
) -> Result<RequestOutcome, RequestRefusal> {
    if from == to {
        return Err(RequestRefusal::ToSelf);
    }
    match tie {
        Tie::Blocked => Err(RequestRefusal::NotFound),
        Tie::Friends => Err(RequestRefusal::AlreadyFriends),
        Tie::None if they_asked => Ok(RequestOutcome::AcceptTheirs),
        Tie::None if already_asked => Err(RequestRefusal::AlreadyPending),
        Tie::None => Ok(RequestOutcome::Pending),
    }
}

/// The feed's order: newest `started_at` first, ties by id descending. A feed page lists items
/// strictly after its cursor in this order.
pub fn feed_order(a: &Activity, b: &Activity) -> Ordering {
    feed_key(b).cmp(&feed_key(a))
}

fn feed_key(activity: &Activity) -> (i64, crate::ActivityId) {
    (activity.started_at.utc_micros(), activity.id)
}

/// The cursor that continues after `activity`.
pub fn cursor_after(activity: &Activity) -> ActivityCursor {
    ActivityCursor { started_at_utc_micros: activity.started_at.utc_micros(), id: activity.id }
}

/// One feed page and whether another follows.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedPage {
    pub items: Vec<Activity>,
    /// Set when more items follow `items`: the cursor of its last one.
    pub next_cursor: Option<ActivityCursor>,
}

/// A k-way merge of runs that are each already in [`feed_order`] (every chunk query returns
/// its top `limit + 1` rows that way) into the first `limit` items overall.
///
/// A binary heap holds the head of each run, so the merge costs O(limit · log k) comparisons
/// for k runs instead of sorting every row fetched. The (`limit` + 1)-th item, if any run
/// has one, only says that a next page exists; no run can hold an item that belongs in this
/// page beyond its own first `limit + 1`, which is why each chunk fetching `limit + 1` is
/// enough. An id seen twice (the caller's own run and a chunk should never overlap, but a
/// merge must not trust that) is kept once.
pub fn merge_newest_first(runs: Vec<Vec<Activity>>, limit: usize) -> MergedPage {
    struct Head {
        activity: Activity,
        run: usize,
    }
    impl PartialEq for Head {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }
    impl Eq for Head {}
    impl PartialOrd for Head {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Head {
        /// The max-heap pops the newest first.
        fn cmp(&self, other: &Self) -> Ordering {
            feed_key(&self.activity).cmp(&feed_key(&other.activity))
        }
    }

    let mut runs: Vec<std::vec::IntoIter<Activity>> = runs.into_iter().map(Vec::into_iter).collect();
    let mut heads: BinaryHeap<Head> = runs
        .iter_mut()
        .enumerate()
        .filter_map(|(run, items)| items.next().map(|activity| Head { activity, run }))
        .collect();
    let mut items: Vec<Activity> = Vec::with_capacity(limit.min(heads.len() * 4));
    let mut more = false;
    while let Some(Head { activity, run }) = heads.pop() {
        if let Some(next) = runs[run].next() {
            heads.push(Head { activity: next, run });
        }
        if items.last().is_some_and(|last| last.id == activity.id) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(activity);
    }
    let next_cursor = if more { items.last().map(cursor_after) } else { None };
    MergedPage { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use proptest::prelude::*;

    use super::*;
    use crate::{ActivityDraft, ActivityId, Distance, MovingTime, Sport, StartedAt, Title, Visibility};

    fn activity(started_at_s: i64, id: ActivityId) -> Activity {
        let at = Utc.timestamp_opt(started_at_s, 0).single().unwrap();
        let draft = ActivityDraft {
            sport: Sport::Run,
            title: Title::parse("run").unwrap(),
            started_at: StartedAt::from_parts(at.timestamp_micros(), 0).unwrap(),
            duration: MovingTime::from_seconds(60).unwrap(),
            distance: Distance::from_metres(1000.0).unwrap(),
            visibility: Visibility::Public,
            start_latlng: None,
            description: None,
        };
        Activity::create(id, UserId::new(), draft, at)
    }

    /// Runs as chunk queries return them: each in feed order, each truncated to `limit + 1`.
    fn runs_strategy() -> impl Strategy<Value = Vec<Vec<(i64, u128)>>> {
        // Few distinct instants, so ties on `started_at` are common and ids must break them.
        prop::collection::vec(prop::collection::vec((0_i64..20, any::<u128>()), 0..30), 0..8)
    }

    proptest! {
        #[test]
        fn merging_equals_sorting_everything_and_truncating(runs in runs_strategy(), limit in 1_usize..25) {
            let runs: Vec<Vec<Activity>> = runs
                .into_iter()
                .map(|run| {
                    let mut run: Vec<Activity> = run
                        .into_iter()
                        .map(|(at, id)| activity(at, ActivityId::from_uuid(uuid::Uuid::from_u128(id))))
                        .collect();
                    run.sort_by(feed_order);
                    run.truncate(limit + 1);
                    run
                })
                .collect();
            let mut everything: Vec<Activity> = runs.iter().flatten().cloned().collect();
            everything.sort_by(feed_order);
            everything.dedup_by_key(|a| a.id);
            let more = everything.len() > limit;
            everything.truncate(limit);

            let page = merge_newest_first(runs, limit);
            prop_assert_eq!(&page.items, &everything);
            prop_assert_eq!(page.next_cursor, if more { everything.last().map(cursor_after) } else { None });
        }
    }

    #[test]
    fn requests_follow_the_rules() {
        let (me, you) = (UserId::new(), UserId::new());
        assert_eq!(decide_request(me, me, Tie::None, false, false), Err(RequestRefusal::ToSelf));
        assert_eq!(decide_request(me, you, Tie::Blocked, false, true), Err(RequestRefusal::NotFound));
        assert_eq!(decide_request(me, you, Tie::Friends, false, false), Err(RequestRefusal::AlreadyFriends));
        assert_eq!(decide_request(me, you, Tie::None, true, false), Err(RequestRefusal::AlreadyPending));
        assert_eq!(decide_request(me, you, Tie::None, false, true), Ok(RequestOutcome::AcceptTheirs));
        assert_eq!(decide_request(me, you, Tie::None, false, false), Ok(RequestOutcome::Pending));
    }
}
