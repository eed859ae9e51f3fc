//! The scaled-out backend: PostgreSQL, shared by many stateless replicas.
//!
//! A dropped future stops the client from waiting but not, by itself, the server from working.
//! Two server settings close that gap. A unit of work abandoned mid-statement (deadline passed,
//! request dropped) closes its connection, and `client_connection_check_interval` makes the
//! backend notice the closed socket and abort the statement within a fraction of a second,
//! however long it had left. `statement_timeout`, fixed at the store's per-unit cap on every
//! connection, bounds any statement that nobody abandons. Writes additionally carry
//! `SET LOCAL statement_timeout` with the time left, which costs nothing because it travels with
//! `BEGIN`. Reads need no set-up round trip at all.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};
use stride_concurrency::Deadline;

use crate::uow::ConnectionHealth;
use crate::{Backend, PoolStats, RepoError, RepoResult, SqlxUnitOfWork, Store, StoreConfig};

/// How soon a backend notices that the client closed the connection under a running statement
/// and aborts it. Each check is one `poll` on the socket, so a short interval is cheap.
const ABANDONED_STATEMENT_CHECK: Duration = Duration::from_millis(100);

/// PostgreSQL's `undefined_object`: at connection start, a setting the server does not know.
const PG_UNDEFINED_OBJECT: &str = "42704";

/// PostgreSQL 13 and older do not know `client_connection_check_interval` and refuse every
/// connection that sets it; an operator should read what to do, not only which parameter failed.
fn explain_refused_setting(err: sqlx::Error) -> RepoError {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(PG_UNDEFINED_OBJECT) => RepoError::Other(format!(
            "PostgreSQL refused a connection setting ({}); Stride sets client_connection_check_interval, \
             which needs PostgreSQL 14 or later",
            db.message()
        )),
        _ => err.into(),
    }
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Set by a unit of work whose connection failed; while it is, every pooled connection is
    /// pinged before use.
    health: Arc<ConnectionHealth>,
    statement_timeout: Duration,
}

impl PgStore {
    /// A unit of work whose every statement ends by the deadline, on the server too. Writes open
    /// a transaction bounded by `SET LOCAL` (one round trip with `BEGIN`). Reads run in
    /// autocommit mode and send nothing up front: the connection-wide `statement_timeout` caps
    /// them, and if the caller gives up sooner, the connection is closed (see `tx.rs`) and the
    /// server aborts the statement within `ABANDONED_STATEMENT_CHECK`. An earlier design set a
    /// session `statement_timeout` before every read; that round trip cost more than a
    /// one-row query does.
    async fn unit_of_work(&self, deadline: Deadline, write: bool) -> RepoResult<SqlxUnitOfWork<Postgres>> {
        let mut uow =
            SqlxUnitOfWork::acquire(&self.pool, deadline.tightened_by(self.statement_timeout), Some(&self.health))
                .await?;
        if write {
            // `statement_timeout = 0` would mean "no limit": never send less than 1 ms. The
            // interpolated value is an integer, never client input.
            let budget_ms = uow.deadline().remaining().as_millis().max(1);
            uow.begin(format!("BEGIN READ WRITE; SET LOCAL statement_timeout = {budget_ms}")).await?;
        }
        Ok(uow)
    }
}

/// The channel enqueues notify on; the payload is the job's kind.
pub(crate) const JOBS_CHANNEL: &str = "stride_jobs";

impl Store for PgStore {
    type Uow = SqlxUnitOfWork<Postgres>;

    const BACKEND: Backend = Backend::Postgres;

    async fn job_wakeups(&self) -> RepoResult<Option<tokio::sync::broadcast::Receiver<String>>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        let (sender, receiver) = tokio::sync::broadcast::channel(1024);
        // One listening connection per process, forwarding to every kind's loop. It ends when
        // the last receiver is gone; `recv` reconnects by itself after a lost connection.
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        if sender.send(notification.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        if sender.receiver_count() == 0 {
                            return;
                        }
                        tracing::debug!(%error, "job notifications interrupted; the runner polls meanwhile");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(receiver))
    }

    async fn connect(config: &StoreConfig) -> RepoResult<Self> {
        let ping_idle_after = config.ping_idle_after;
        let health = Arc::new(ConnectionHealth::default());
        let watched = health.clone();
        // Startup options, so every connection holds them from its first statement; the
        // interval needs PostgreSQL 14 or later.
        let options = config.url.parse::<PgConnectOptions>()?.options([
            ("statement_timeout", format!("{}ms", config.statement_timeout.as_millis().max(1))),
            ("client_connection_check_interval", format!("{}ms", ABANDONED_STATEMENT_CHECK.as_millis())),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.statement_timeout)
            // sqlx pings every connection as it returns to the pool, so one released a moment
            // ago is known alive, and pinging it again on acquire would put a round trip in
            // front of every unit of work. Only one that sat idle (a server restart, an idle
            // killer) is checked again; a dead one is replaced before anyone gets it.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let check = meta.idle_for >= ping_idle_after || watched.suspect();
                Box::pin(async move {
                    if check {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(explain_refused_setting)?;
        Ok(Self { pool, health, statement_timeout: config.statement_timeout })
    }

    /// Safe to run from several replicas at once: sqlx serialises migrators with an advisory lock.
    async fn migrate(&self) -> RepoResult<()> {
        sqlx::migrate!("../../migrations/postgres").run(&self.pool).await.map_err(RepoError::migration)
    }

    async fn read(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(deadline, false).await
    }

    async fn write(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(deadline, true).await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats { pool: "postgres", size: self.pool.size(), idle: self.pool.num_idle() as u32 }]
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
