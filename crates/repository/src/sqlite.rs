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
use stride_concurrency::Deadline;

use crate::uow::LocalWakeups;
use crate::{Backend, PoolStats, RepoError, RepoResult, SqlxUnitOfWork, Store, StoreConfig};

#[derive(Clone, Debug)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: SqlitePool,
    statement_timeout: Duration,
    /// SQLite has no LISTEN/NOTIFY: a commit that enqueued jobs announces their kinds here, so
    /// this process's runner starts them at once instead of at its next poll. Other processes
    /// on the same file still find them by polling.
    wakeups: LocalWakeups,
}

/// How long SQLite itself waits on a lock (e.g. a WAL checkpoint) before giving up. Writers do
/// not contend here — they queue on the writer pool — so this only covers rare internal locks.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many virtual-machine instructions SQLite runs between deadline checks (~tens of µs).
const PROGRESS_CHECK_EVERY_OPS: i32 = 10_000;

impl SqliteStore {
    /// A unit of work on `pool`; `begin` is the statement that opens its transaction, if any.
    async fn unit_of_work(
        &self,
        pool: &SqlitePool,
        deadline: Deadline,
        begin: Option<&'static str>,
    ) -> RepoResult<SqlxUnitOfWork<Sqlite>> {
        // A local file does not drop its connections the way a server does: nothing to report.
        let mut uow = SqlxUnitOfWork::acquire(pool, deadline.tightened_by(self.statement_timeout), None).await?;
        // SQLite's counterpart of PostgreSQL's statement_timeout: the engine calls this every
        // few thousand VM steps and aborts the statement (SQLITE_INTERRUPT) once the deadline
        // has passed, so a cancelled request cannot keep the single writer busy. Each unit of
        // work installs its own handler first, replacing the previous one.
        let stop_at = uow.deadline().instant().into_std();
        uow.on_the_wire(|conn| async move {
            let mut handle = conn.lock_handle().await?;
            handle.set_progress_handler(PROGRESS_CHECK_EVERY_OPS, move || std::time::Instant::now() < stop_at);
            Ok(())
        })
        .await?;
        if let Some(begin) = begin {
            uow.announce_jobs_on(self.wakeups.clone());
            uow.begin(begin.to_owned()).await?;
        }
        Ok(uow)
    }
}

impl Store for SqliteStore {
    type Uow = SqlxUnitOfWork<Sqlite>;

    const BACKEND: Backend = Backend::Sqlite;

    async fn connect(config: &StoreConfig) -> RepoResult<Self> {
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
        let wakeups = std::sync::Arc::new(tokio::sync::broadcast::channel(1024).0);
        Ok(Self { readers, writer, statement_timeout: config.statement_timeout, wakeups })
    }

    async fn migrate(&self) -> RepoResult<()> {
        sqlx::migrate!("../../migrations/sqlite").run(&self.writer).await.map_err(RepoError::migration)
    }

    async fn read(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(&self.readers, deadline, None).await
    }

    async fn write(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(&self.writer, deadline, Some("BEGIN IMMEDIATE")).await
    }

    async fn job_wakeups(&self) -> RepoResult<Option<tokio::sync::broadcast::Receiver<String>>> {
        Ok(Some(self.wakeups.subscribe()))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [("sqlite_readers", &self.readers), ("sqlite_writer", &self.writer)]
            .into_iter()
            .map(|(pool, p)| PoolStats { pool, size: p.size(), idle: p.num_idle() as u32 })
            .collect()
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
