//! The backend boundary: a [`Store`] hands out [`UnitOfWork`]s, and a unit of work implements
//! every repository trait. Services are generic over `S: Store`; `server` picks the backend
//! once and calls one generic launch path.
//!
//! Repository methods take `&mut self` on a unit of work, so two statements of one request can
//! never interleave on one connection, and the borrow checker makes "use after commit"
//! impossible (`commit` consumes the unit of work).

use std::future::Future;

use stride_concurrency::Deadline;

use crate::{
    ActivityRepo, Backend, FeedRepo, IdempotencyRepo, ImportRepo, JobRepo, LimitRepo, PhotoRepo, ProfileRepo,
    RecordsRepo, RelationshipRepo, RepoResult, SessionRepo, StatsRepo, StoreConfig, UserRepo, WeatherRepo, ZoneRepo,
};

/// A backend: hands out units of work. Cheap to clone (pools are reference-counted).
pub trait Store: Clone + Send + Sync + 'static {
    type Uow: UnitOfWork;

    const BACKEND: Backend;

    /// Opens the pools. Fails if the database cannot be reached or refuses our settings.
    fn connect(config: &StoreConfig) -> impl Future<Output = RepoResult<Self>> + Send;

    /// Applies pending migrations. Safe to run from several replicas at once.
    fn migrate(&self) -> impl Future<Output = RepoResult<()>> + Send;

    /// A unit of work for reads. It holds no transaction: each statement sees the latest
    /// committed data. Dropping it is the normal way to end it.
    fn read(&self, deadline: Deadline) -> impl Future<Output = RepoResult<Self::Uow>> + Send;

    /// A read-write unit of work. On SQLite it holds the single write lock from its first
    /// statement (`BEGIN IMMEDIATE`), so a read-then-write never fails with "database is locked".
    fn write(&self, deadline: Deadline) -> impl Future<Output = RepoResult<Self::Uow>> + Send;

    /// Checks the database answers, for readiness probes.
    fn ping(&self, deadline: Deadline) -> impl Future<Output = RepoResult<()>> + Send {
        async move { self.read(deadline).await?.ping().await }
    }

    /// Wake-ups for the job runner: the kind of every job enqueued anywhere, as soon as its
    /// transaction commits (PostgreSQL `LISTEN`/`NOTIFY`), so a runner need not wait for its
    /// next poll. `None` where the engine has no such channel (SQLite): the runner polls.
    /// Best effort: a wake-up lost to a reconnect is made up by the poll.
    fn job_wakeups(&self) -> impl Future<Output = RepoResult<Option<tokio::sync::broadcast::Receiver<String>>>> + Send {
        async { Ok(None) }
    }

    fn pool_stats(&self) -> Vec<PoolStats>;

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
pub trait UnitOfWork:
    UserRepo
    + SessionRepo
    + ActivityRepo
    + IdempotencyRepo
    + StatsRepo
    + PhotoRepo
    + ProfileRepo
    + RelationshipRepo
    + FeedRepo
    + JobRepo
    + WeatherRepo
    + LimitRepo
    + ImportRepo
    + ZoneRepo
    + RecordsRepo
    + Send
{
    fn commit(self) -> impl Future<Output = RepoResult<()>> + Send;

    /// Ends a write that decided to change nothing (not found, a conflict, a replay) and keeps
    /// its connection for the next request. Dropping the unit instead is for cancellation: it
    /// closes the connection, which is always safe but costs a new one (a new PostgreSQL
    /// backend) every time.
    fn rollback(self) -> impl Future<Output = RepoResult<()>> + Send;

    /// One round trip that proves the connection works.
    fn ping(&mut self) -> impl Future<Output = RepoResult<()>> + Send;
}
