//! Friends and blocks: finding people, friend requests, friendships, blocks.
//!
//! Every write that changes how two people stand runs in one unit of work that starts with
//! [`RelationshipRepo::lock_pair`]: the pair's two user rows are locked in id order (PostgreSQL) or
//! the single writer is held (SQLite) before anything is read, so concurrent sends, accepts,
//! cancels, unfriends and blocks of one pair run one after another and each sees what the
//! previous one committed. Two people asking each other at the same instant become friends
//! exactly once: the second to take the lock finds the first's request and accepts it.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use stride_concurrency::Deadline;
use stride_domain::{
    BlockedUser, Connection, FriendRequest, FriendRequestId, ListCursor, Profile, RequestDirection, RequestOutcome,
    RequestRefusal, Tie, UserId, Username, decide_request,
};
use stride_repository::{ProfileRepo, RelationshipRepo, Store};

use crate::limits::Limits;
use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult, relationship};

/// The social limits; each is an operator setting (see README).
#[derive(Debug, Clone, Copy)]
pub struct SocialConfig {
    /// Friends per user; an accept past it answers 409 `limit_reached`.
    pub max_friends: u64,
    /// Pending requests a user may have sent and not seen answered.
    pub max_pending_outgoing: u64,
    /// Requests a user may send in any 24 hours (429 past it, with `Retry-After`).
    pub requests_per_day: u64,
}

impl Default for SocialConfig {
    fn default() -> Self {
        Self { max_friends: 5_000, max_pending_outgoing: 500, requests_per_day: 100 }
    }
}

/// One page of a list of people or requests.
pub type Page<T> = stride_domain::Page<T, ListCursor>;

/// What sending a friend request did.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestSent {
    Pending(FriendRequest),
    /// They had already asked: now friends.
    Friends(Connection),
}

/// What `end` removes.
enum Ending {
    Friendship,
    Block,
}

/// Whether a block was new.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    New(BlockedUser),
    Already(BlockedUser),
}

const DAY: TimeDelta = TimeDelta::hours(24);

#[derive(Clone)]
pub struct SocialService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: SocialConfig,
    limits: Limits<S>,
}

impl<S: Store> SocialService<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>, config: SocialConfig, limits: Limits<S>) -> Self {
        Self { store, clock, config, limits }
    }

    /// A public profile by username; `NotFound` for no such user and across a block alike.
    /// Lookups are limited per viewer (`Throttled` past it), so usernames cannot be
    /// enumerated at speed.
    pub async fn profile_by_username(
        &self,
        deadline: Deadline,
        viewer: UserId,
        username: &str,
    ) -> ServiceResult<Profile> {
        self.limits.admit(deadline, &[self.limits.lookups_by(viewer)]).await?;
        let username = Username::parse(username).map_err(|_| ServiceError::NotFound)?;
        let mut uow = self.store.read(deadline).await?;
        let profile = uow.profile_by_username(&username).await?.ok_or(ServiceError::NotFound)?;
        if relationship(&mut uow, viewer, profile.id).await?.may_view_profile() {
            Ok(profile)
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// `POST /friends/requests`: a new pending request, or a friendship if they had asked.
    pub async fn send_request(&self, deadline: Deadline, from: UserId, username: &str) -> ServiceResult<RequestSent> {
        let username = Username::parse(username).map_err(|_| ServiceError::NotFound)?;
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let to = uow.profile_by_username(&username).await?.ok_or(ServiceError::NotFound)?;
            if to.id == from {
                return Err(refusal(RequestRefusal::ToSelf));
            }
            uow.lock_pair(from, to.id).await?;
            let tie = uow.tie(from, to.id).await?;
            let already_asked = uow.request_between(from, to.id).await?.is_some();
            let theirs = uow.request_between(to.id, from).await?;
            match decide_request(from, to.id, tie, already_asked, theirs.is_some()).map_err(refusal)? {
                RequestOutcome::AcceptTheirs => {
                    self.befriend(&mut uow, from, to.id, now).await?;
                    Ok(RequestSent::Friends(Connection { user: to, since: now }))
                }
                RequestOutcome::Pending => {
                    let (sent_today, oldest) = uow.request_sends_since(from, now - DAY).await?;
                    if sent_today >= self.config.requests_per_day {
                        let retry_after = oldest.map_or(DAY, |oldest| oldest + DAY - now);
                        return Err(ServiceError::RateLimited {
                            retry_after: retry_after.to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1)),
                            message: format!(
                                "you sent {} friend requests in the last 24 hours, the most allowed",
                                self.config.requests_per_day
                            ),
                        });
                    }
                    if uow.pending_outgoing(from).await? >= self.config.max_pending_outgoing {
                        return Err(limit_reached(format!(
                            "you already have {} pending friend requests",
                            self.config.max_pending_outgoing
                        )));
                    }
                    let id = FriendRequestId::new();
                    uow.insert_friend_request(id, from, to.id, now).await?;
                    uow.record_request_send(from, now, now - DAY).await?;
                    let request = uow.friend_request(id).await?.ok_or_else(|| gone("the request just written"))?;
                    Ok(RequestSent::Pending(request))
                }
            }
        }
        .await;
        finish(uow, outcome).await
    }

    /// The recipient accepts: the two become friends and the request is gone.
    pub async fn accept(&self, deadline: Deadline, me: UserId, id: FriendRequestId) -> ServiceResult<Connection> {
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let request = self.request_addressed(&mut uow, id, |r| r.to.id == me).await?;
            self.befriend(&mut uow, request.from.id, me, now).await?;
            Ok(Connection { user: request.from, since: now })
        }
        .await;
        finish(uow, outcome).await
    }

    /// The recipient declines; the sender is not told, and may ask again.
    pub async fn decline(&self, deadline: Deadline, me: UserId, id: FriendRequestId) -> ServiceResult<()> {
        self.withdraw(deadline, id, |r| r.to.id == me).await
    }

    /// The sender cancels.
    pub async fn cancel(&self, deadline: Deadline, me: UserId, id: FriendRequestId) -> ServiceResult<()> {
        self.withdraw(deadline, id, |r| r.from.id == me).await
    }

    async fn withdraw(
        &self,
        deadline: Deadline,
        id: FriendRequestId,
        may: impl Fn(&FriendRequest) -> bool + Send,
    ) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            self.request_addressed(&mut uow, id, may).await?;
            uow.delete_friend_request(id).await?;
            Ok(())
        }
        .await;
        finish(uow, outcome).await
    }

    /// The request, with its pair locked, if `may` says the caller is the right side of it;
    /// `NotFound` for anyone else's request, exactly as for one that does not exist.
    async fn request_addressed(
        &self,
        uow: &mut S::Uow,
        id: FriendRequestId,
        may: impl Fn(&FriendRequest) -> bool,
    ) -> ServiceResult<FriendRequest> {
        let request = uow.friend_request(id).await?.filter(&may).ok_or(ServiceError::NotFound)?;
        uow.lock_pair(request.from.id, request.to.id).await?;
        // Read again under the lock: a concurrent cancel or accept may have won.
        uow.friend_request(id).await?.filter(&may).ok_or(ServiceError::NotFound)
    }

    /// Makes `a` and `b` friends; the pair is locked. Pending requests between them go.
    async fn befriend(
        &self,
        uow: &mut S::Uow,
        a: UserId,
        b: UserId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ServiceResult<()> {
        match uow.tie(a, b).await? {
            Tie::Friends => return Err(refusal(RequestRefusal::AlreadyFriends)),
            Tie::Blocked => return Err(ServiceError::NotFound),
            Tie::None => {}
        }
        for user in [a, b] {
            if uow.friend_count(user).await? >= self.config.max_friends {
                let whose = if user == a { "the sender" } else { "the recipient" };
                return Err(limit_reached(format!("{whose} already has {} friends", self.config.max_friends)));
            }
        }
        uow.delete_requests_between(a, b).await?;
        uow.insert_friendship(a, b, now).await?;
        Ok(())
    }

    pub async fn requests(
        &self,
        deadline: Deadline,
        me: UserId,
        direction: RequestDirection,
        after: Option<ListCursor>,
        limit: u32,
    ) -> ServiceResult<Page<FriendRequest>> {
        let mut uow = self.store.read(deadline).await?;
        let items = uow.friend_requests(me, direction, after, limit + 1).await?;
        Ok(Page::from_overfetched(items, limit, |r| ListCursor {
            at_utc_micros: r.created_at.timestamp_micros(),
            id: r.id.as_uuid(),
        }))
    }

    /// Newest friendship first.
    pub async fn friends(
        &self,
        deadline: Deadline,
        me: UserId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> ServiceResult<Page<Connection>> {
        let mut uow = self.store.read(deadline).await?;
        let items = uow.friends(me, after, limit + 1).await?;
        Ok(Page::from_overfetched(items, limit, connection_cursor))
    }

    /// Either side ends a friendship, at once.
    pub async fn unfriend(&self, deadline: Deadline, me: UserId, other: UserId) -> ServiceResult<()> {
        self.end(deadline, me, other, Ending::Friendship).await
    }

    /// Removes a friendship or the caller's block of `other`; `NotFound` if there is none
    /// (an unknown user included: locking a missing row locks nothing, deleting finds nothing).
    async fn end(&self, deadline: Deadline, me: UserId, other: UserId, ending: Ending) -> ServiceResult<()> {
        if me == other {
            return Err(ServiceError::NotFound);
        }
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            uow.lock_pair(me, other).await?;
            let removed = match ending {
                Ending::Friendship => uow.delete_friendship(me, other).await?,
                Ending::Block => uow.delete_block(me, other).await?,
            };
            if removed { Ok(()) } else { Err(ServiceError::NotFound) }
        }
        .await;
        finish(uow, outcome).await
    }

    /// Ends any friendship and pending request between the two and refuses new ones; from now
    /// on each sees nothing of the other. Blocking someone already blocked changes nothing.
    pub async fn block(&self, deadline: Deadline, me: UserId, other: UserId) -> ServiceResult<Blocked> {
        if me == other {
            return Err(ServiceError::Invalid { field: "user_id", message: "you cannot block yourself".into() });
        }
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let profile = uow.profile_by_id(other).await?.ok_or(ServiceError::NotFound)?;
            uow.lock_pair(me, other).await?;
            uow.delete_friendship(me, other).await?;
            uow.delete_requests_between(me, other).await?;
            let they_block_me = uow.block_since(other, me).await?.is_some();
            if uow.insert_block(me, other, now).await? {
                Ok(Blocked::New(BlockedUser::new(profile, now, they_block_me)))
            } else {
                let since = uow.block_since(me, other).await?.ok_or_else(|| gone("the block just found"))?;
                Ok(Blocked::Already(BlockedUser::new(profile, since, they_block_me)))
            }
        }
        .await;
        finish(uow, outcome).await
    }

    pub async fn unblock(&self, deadline: Deadline, me: UserId, other: UserId) -> ServiceResult<()> {
        self.end(deadline, me, other, Ending::Block).await
    }

    /// The people the caller blocked, newest first (by id only where they block the caller).
    pub async fn blocks(
        &self,
        deadline: Deadline,
        me: UserId,
        after: Option<ListCursor>,
        limit: u32,
    ) -> ServiceResult<Page<BlockedUser>> {
        let mut uow = self.store.read(deadline).await?;
        let items = uow.blocks(me, after, limit + 1).await?;
        Ok(Page::from_overfetched(items, limit, |blocked| ListCursor {
            at_utc_micros: blocked.since.timestamp_micros(),
            id: blocked.id.as_uuid(),
        }))
    }
}

fn connection_cursor(connection: &Connection) -> ListCursor {
    ListCursor { at_utc_micros: connection.since.timestamp_micros(), id: connection.user.id.as_uuid() }
}

fn refusal(refusal: RequestRefusal) -> ServiceError {
    match refusal {
        RequestRefusal::ToSelf => {
            ServiceError::Invalid { field: "username", message: "you cannot send a friend request to yourself".into() }
        }
        RequestRefusal::NotFound => ServiceError::NotFound,
        RequestRefusal::AlreadyFriends => {
            ServiceError::Conflict { code: "already_friends", message: "you are already friends".into() }
        }
        RequestRefusal::AlreadyPending => ServiceError::Conflict {
            code: "request_pending",
            message: "a friend request to this user is already pending".into(),
        },
    }
}

fn limit_reached(message: String) -> ServiceError {
    ServiceError::Conflict { code: "limit_reached", message }
}

fn gone(what: &str) -> ServiceError {
    ServiceError::Internal(format!("{what} is missing"))
}
