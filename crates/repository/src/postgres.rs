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

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Postgres};
use stride_workers::Deadline;

use crate::tx::bounded;
use crate::{Backend, PoolStats, RepoError, RepoResult, SqlxUnitOfWork, Store, StoreConfig};

impl_repositories!(Postgres, lock_clause = " FOR UPDATE");

impl SqlxUnitOfWork<Postgres> {
    /// The user's distinct local days, ascending. They travel as one array, which costs a
    /// fraction of what ten thousand result rows cost to send and decode, and they are sorted
    /// and deduplicated here rather than in SQL. PostgreSQL 15 sorts an aggregate's input
    /// itself whatever order the rows arrive in, and `DISTINCT` adds a sort or hash of its own:
    /// measured at 10k activities, fetching the days took 9–14 ms with both and 4–6 ms without,
    /// sorting here included, whichever plan the table's statistics led to (55 against 48 ms at
    /// 100k). The outcome no longer depends on the plan either: any row order gives one answer.
    pub(crate) async fn active_days_ascending(
        &mut self,
        user: stride_domain::UserId,
        scope: stride_domain::StatsScope,
    ) -> RepoResult<Vec<i32>> {
        let query = sqlx::query_as::<_, (Option<Vec<i32>>,)>(concat!(
            "SELECT array_agg(local_day) FROM activities WHERE user_id = $1 AND ",
            scope_filter!()
        ))
        .bind(user.as_uuid())
        .bind(scope.as_str());
        let mut days = run!(self, query, fetch_one)?.0.unwrap_or_default();
        days.sort_unstable();
        days.dedup();
        Ok(days)
    }
}

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
    statement_timeout: Duration,
}

impl PgStore {
    pub async fn connect(config: &StoreConfig) -> RepoResult<Self> {
        let ping_idle_after = config.ping_idle_after;
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
                Box::pin(async move {
                    if meta.idle_for >= ping_idle_after {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(explain_refused_setting)?;
        Ok(Self { pool, statement_timeout: config.statement_timeout })
    }

    /// Safe to run from several replicas at once: sqlx serialises migrators with an advisory lock.
    pub async fn migrate(&self) -> RepoResult<()> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| RepoError::Other(format!("migration failed: {e}")))
    }

    /// A unit of work whose every statement ends by the deadline, on the server too. Writes open
    /// a transaction bounded by `SET LOCAL` (one round trip with `BEGIN`). Reads run in
    /// autocommit mode and send nothing up front: the connection-wide `statement_timeout` caps
    /// them, and if the caller gives up sooner, the connection is closed (see `tx.rs`) and the
    /// server aborts the statement within `ABANDONED_STATEMENT_CHECK`. An earlier design set a
    /// session `statement_timeout` before every read; that round trip cost more than a
    /// one-row query does.
    async fn unit_of_work(&self, deadline: Deadline, write: bool) -> RepoResult<SqlxUnitOfWork<Postgres>> {
        let deadline = deadline.tightened_by(self.statement_timeout);
        let conn = bounded(deadline, self.pool.acquire()).await.map_err(RepoError::from_acquire)?;
        let mut uow = SqlxUnitOfWork::new(conn, deadline);
        if write {
            // `statement_timeout = 0` would mean "no limit": never send less than 1 ms. The
            // interpolated value is an integer, never client input.
            let budget_ms = deadline.remaining().as_millis().max(1);
            uow.transaction_open = true;
            let setup = format!("BEGIN READ WRITE; SET LOCAL statement_timeout = {budget_ms}");
            run!(uow, sqlx::raw_sql(AssertSqlSafe(setup)), execute)?;
        }
        Ok(uow)
    }
}

impl Store for PgStore {
    type Uow = SqlxUnitOfWork<Postgres>;

    async fn read(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(deadline, false).await
    }

    async fn write(&self, deadline: Deadline) -> RepoResult<Self::Uow> {
        self.unit_of_work(deadline, true).await
    }

    async fn ping(&self, deadline: Deadline) -> RepoResult<()> {
        let mut uow = self.read(deadline).await?;
        run!(uow, sqlx::raw_sql("SELECT 1"), execute)?;
        Ok(())
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats { pool: "postgres", size: self.pool.size(), idle: self.pool.num_idle() as u32 }]
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
