//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time. Rather than letting concurrent writers collide and
//! surface `SQLITE_BUSY` ("database is locked") — which `busy_timeout` cannot prevent for a
//! deferred transaction that reads and then writes — every write goes through a dedicated
//! single-connection pool and starts with `BEGIN IMMEDIATE`. Writers therefore queue fairly
//! (FIFO) on that pool, bounded by their deadline, while readers use their own pool of
//! read-only connections and never block on writers thanks to WAL.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use stride_workers::Deadline;

use crate::tx::bounded;
use crate::{Backend, PoolStats, RepoError, RepoResult, SqlxUnitOfWork, Store, StoreConfig};

impl_repositories!(Sqlite, lock_clause = "");

impl SqlxUnitOfWork<Sqlite> {
    /// The user's distinct local days, ascending. Rows are cheap in-process, and SQLite has no
    /// array type to pack them into.
    pub(crate) async fn active_days_ascending(
        &mut self,
        user: stride_domain::UserId,
        scope: stride_domain::StatsScope,
    ) -> RepoResult<Vec<i32>> {
        let query = sqlx::query_as::<_, (i32,)>(concat!(
            "SELECT DISTINCT local_day FROM activities WHERE user_id = $1 AND ",
            scope_filter!(),
            " ORDER BY local_day"
        ))
        .bind(user.as_uuid())
        .bind(scope.as_str());
        Ok(run!(self, query, fetch_all)?.into_iter().map(|(day,)| day).collect())
    }
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqlitePool,
    statement_timeout: Duration,
}

/// How long SQLite itself waits on a lock (e.g. a WAL checkpoint) before giving up. Writers do
/// not contend here — they queue on the writer pool — so this only covers rare internal locks.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many virtual-machine instructions SQLite runs between deadline checks (~tens of µs).
const PROGRESS_CHECK_EVERY_OPS: i32 = 10_000;

impl SqliteStore {
    pub async fn connect(config: &StoreConfig) -> RepoResult<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| RepoError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // The writer connects first: it creates the file and switches it to WAL, which the
        // read-only connections cannot do.
        // A connection to a local file cannot go stale the way a network connection can: no
        // ping before each acquire (`test_before_acquire(false)`).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.statement_timeout)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.statement_timeout)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { readers, writer, statement_timeout: config.statement_timeout })
    }

    pub async fn migrate(&self) -> RepoResult<()> {
        sqlx::migrate!("../../migrations/sqlite")
            .run(&self.writer)
            .await
            .map_err(|e| RepoError::Other(format!("migration failed: {e}")))
    }

    /// A unit of work on `pool`; `begin` is the statement that opens its transaction, if any.
    async fn unit_of_work(
        &self,
        pool: &SqlitePool,
        deadline: Deadline,
        begin: Option<&'static str>,
    ) -> RepoResult<SqlxUnitOfWork<Sqlite>> {
        let deadline = deadline.tightened_by(self.statement_timeout);
        let conn = bounded(deadline, pool.acquire()).await.map_err(RepoError::from_acquire)?;
        let mut uow = SqlxUnitOfWork::new(conn, deadline);
        // SQLite's counterpart of PostgreSQL's statement_timeout: the engine calls this every
        // few thousand VM steps and aborts the statement (SQLITE_INTERRUPT) once the deadline
        // has passed, so a cancelled request cannot keep the single writer busy. Each unit of
        // work installs its own handler first, replacing the previous one.
        let stop_at = deadline.instant().into_std();
        uow.statement_in_flight = true;
        let mut handle = bounded(deadline, uow.conn.lock_handle()).await?;
        handle.set_progress_handler(PROGRESS_CHECK_EVERY_OPS, move || std::time::Instant::now() < stop_at);
        drop(handle);
        uow.statement_in_flight = false;
        if let Some(begin) = begin {
            uow.transaction_open = true;
            run!(uow, sqlx::raw_sql(begin), execute)?;
        }
        Ok(uow)
    }
}

impl Store for SqliteStore {
    type Uow = SqlxUnitOfWork<Sqlite>;

    async fn read(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(&self.readers, deadline, None).await
    }

    async fn write(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(&self.writer, deadline, Some("BEGIN IMMEDIATE")).await
    }

    async fn ping(&self, deadline: Deadline) -> RepoResult<()> {
        let mut uow = self.read(deadline).await?;
        run!(uow, sqlx::raw_sql("SELECT 1"), execute)?;
        Ok(())
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [("sqlite_readers", &self.readers), ("sqlite_writer", &self.writer)]
            .into_iter()
            .map(|(pool, p)| PoolStats { pool, size: p.size(), idle: p.num_idle() as u32 })
            .collect()
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
