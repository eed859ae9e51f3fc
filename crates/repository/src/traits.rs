//! The contracts the services program against. The lower layer owns the traits it offers.
//!
//! Repository methods take `&mut self` on a unit of work, so two statements of one request can
//! never interleave on one connection, and the borrow checker makes "use after commit"
//! impossible (`commit` consumes the unit of work).

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{Activity, ActivityCursor, ActivityId, Run, RunEdit, StatsScope, TimeZone, User, UserId, Username};
use stride_workers::Deadline;

use crate::{Backend, RepoResult};

/// A backend: hands out units of work. Cheap to clone (pools are reference-counted).
pub trait Store: Clone + Send + Sync + 'static {
    type Uow: UnitOfWork;

    /// A unit of work for reads. It holds no transaction: each statement sees the latest
    /// committed data. Dropping it is the normal way to end it.
    fn read(&self, deadline: Deadline) -> impl Future<Output = RepoResult<Self::Uow>> + Send;

    /// A read-write unit of work. On SQLite it holds the single write lock from its first
    /// statement (`BEGIN IMMEDIATE`), so a read-then-write never fails with "database is locked".
    fn write(&self, deadline: Deadline) -> impl Future<Output = RepoResult<Self::Uow>> + Send;

    /// Checks the database answers, for readiness probes.
    fn ping(&self, deadline: Deadline) -> impl Future<Output = RepoResult<()>> + Send;

    fn pool_stats(&self) -> Vec<PoolStats>;

    fn backend(&self) -> Backend;

    /// Waits for checked-out connections to come back, then closes every pool.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
}

/// One connection, and for writes one transaction, across every repository. Dropping a write
/// without `commit` rolls it back.
pub trait UnitOfWork: UserRepo + SessionRepo + ActivityRepo + IdempotencyRepo + StatsRepo + Send {
    fn commit(self) -> impl Future<Output = RepoResult<()>> + Send;
}

/// A user together with the stored hash of their password; only the login path needs this.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

pub trait UserRepo {
    /// Fails with `Conflict { constraint: "users_username_key" }` when the username is taken.
    fn insert_user(&mut self, user: &User, password_hash: &str) -> impl Future<Output = RepoResult<()>> + Send;
    fn user_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<User>>> + Send;
    fn credentials_by_username(
        &mut self,
        username: &Username,
    ) -> impl Future<Output = RepoResult<Option<Credentials>>> + Send;
    /// Stores `display_name` and `timezone`; `NotFound` if the user is gone.
    fn update_user_profile(&mut self, user: &User) -> impl Future<Output = RepoResult<()>> + Send;
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub trait SessionRepo {
    fn insert_session(&mut self, session: &NewSession) -> impl Future<Output = RepoResult<()>> + Send;
    /// The user a live (unexpired) session belongs to, with their current statistics version
    /// (read in the same statement, so a stats request needs no second query for it).
    fn user_by_session(
        &mut self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Option<(User, i64)>>> + Send;
    /// Returns whether a session was removed.
    fn delete_session(&mut self, token_hash: &[u8; 32]) -> impl Future<Output = RepoResult<bool>> + Send;
}

pub trait ActivityRepo {
    fn insert_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
    fn activity_by_id(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
    /// Like `activity_by_id`, but also locks the row until the unit of work ends, so a
    /// read-modify-write cannot lose a concurrent update.
    fn activity_by_id_for_update(
        &mut self,
        id: ActivityId,
    ) -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
    /// One page of an owner's activities, newest `started_at` first, ties by id descending,
    /// strictly after `after` in that order.
    fn list_activities(
        &mut self,
        owner: UserId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
    /// Stores every mutable field; `NotFound` if the row is gone.
    fn update_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
    /// Returns whether a row was removed.
    fn delete_activity(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<bool>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// A digest of the first request, so a key reused for a different request is refused.
    pub fingerprint: Vec<u8>,
    pub activity_id: ActivityId,
}

pub trait IdempotencyRepo {
    /// The record for `key`, if one was made at or after `not_before`.
    fn find_idempotency_key(
        &mut self,
        user: UserId,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Option<IdempotencyRecord>>> + Send;
    /// Records `key`; a record older than `not_before` is replaced. `Conflict` if a live record
    /// exists (a concurrent request with the same key won the race).
    fn record_idempotency_key(
        &mut self,
        user: UserId,
        key: &str,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
}

/// A user's stored totals in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsTotals {
    pub activities: i64,
    pub distance_mm: i64,
    pub duration_s: i64,
}

/// What a statistics read needs to know about its subject before computing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSubject {
    pub timezone: TimeZone,
    pub version: i64,
}

/// Per-user aggregates. Reads touch O(1) rows; the maintenance methods are called by the
/// services in the same unit of work as the activity write they account for, after
/// `bump_stats_version` has locked the user's row.
pub trait StatsRepo {
    fn stats_subject(&mut self, user: UserId) -> impl Future<Output = RepoResult<Option<StatsSubject>>> + Send;
    fn stats_totals(&mut self, user: UserId, scope: StatsScope)
    -> impl Future<Output = RepoResult<StatsTotals>> + Send;
    /// The latest run starting on or before `day` (the only candidate for the current streak).
    fn latest_run_starting_by(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: i32,
    ) -> impl Future<Output = RepoResult<Option<Run>>> + Send;
    fn longest_run(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<Option<Run>>> + Send;

    /// Increments the user's statistics version, taking the user row's lock until the unit of
    /// work ends. `NotFound` if the user is gone.
    fn bump_stats_version(&mut self, user: UserId) -> impl Future<Output = RepoResult<()>> + Send;
    fn adjust_totals(
        &mut self,
        user: UserId,
        scope: StatsScope,
        delta: StatsTotals,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Adds `delta` to a day's activity count and returns the new count (0 removes the day).
    fn adjust_day(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: i32,
        delta: i32,
    ) -> impl Future<Output = RepoResult<i64>> + Send;
    fn run_ending_at(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: i32,
    ) -> impl Future<Output = RepoResult<Option<Run>>> + Send;
    fn run_starting_at(
        &mut self,
        user: UserId,
        scope: StatsScope,
        day: i32,
    ) -> impl Future<Output = RepoResult<Option<Run>>> + Send;
    fn apply_run_edit(
        &mut self,
        user: UserId,
        scope: StatsScope,
        edit: RunEdit,
    ) -> impl Future<Output = RepoResult<()>> + Send;

    /// Recomputes all of the user's aggregates from the activities table (repair, bulk loads).
    fn rebuild_stats(&mut self, user: UserId) -> impl Future<Output = RepoResult<()>> + Send;

    /// The seed's scan-based queries over `activities` — cost grows with history. Kept as the
    /// benchmark baseline and as the independent recount the maintained aggregates are checked
    /// against.
    fn scan_count(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    fn scan_distance_mm(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    fn scan_duration_s(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<i64>> + Send;
    /// The distinct local days with an activity in the scope, ascending.
    fn scan_active_days(
        &mut self,
        user: UserId,
        scope: StatsScope,
    ) -> impl Future<Output = RepoResult<Vec<i32>>> + Send;
    /// (current, longest) streak: the seed's fourth query, the day list above reduced by the
    /// domain's rule.
    fn scan_streaks(
        &mut self,
        user: UserId,
        scope: StatsScope,
        today: i32,
    ) -> impl Future<Output = RepoResult<(u32, u32)>> + Send;
}
