//! The scaled-out backend: PostgreSQL, shared by many stateless replicas.
//!
//! A dropped future stops the client from waiting but not the server from working, so every
//! unit of work starts with `SET LOCAL statement_timeout` set to the time left until the
//! caller's deadline: abandoned statements end on the server too, at the same moment the
//! client gives up on them.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Postgres};
use stride_workers::Deadline;

use crate::tx::bounded;
use crate::{Backend, PoolStats, RepoError, RepoResult, SqlxUnitOfWork, Store, StoreConfig};

impl_repositories!(Postgres, lock_clause = " FOR UPDATE");

impl SqlxUnitOfWork<Postgres> {
    /// The user's distinct local days, ascending, as one array: the index hands them over
    /// sorted, and one array costs a fraction of what ten thousand result rows cost to send
    /// and decode. `DISTINCT` stays in SQL: with several activities a day (100k activities over
    /// 11k days in the benchmark) it is cheaper to drop repeats before they are sent.
    pub(crate) async fn active_days_ascending(
        &mut self,
        user: stride_domain::UserId,
        scope: stride_domain::StatsScope,
    ) -> RepoResult<Vec<i32>> {
        // `ORDER BY` inside `array_agg` rather than in the subquery: SQL promises the order only
        // there, and the index already supplies it.
        let query = sqlx::query_as::<_, (Option<Vec<i32>>,)>(concat!(
            "SELECT array_agg(local_day ORDER BY local_day) FROM (SELECT DISTINCT local_day FROM activities \
             WHERE user_id = $1 AND ",
            scope_filter!(),
            ") AS days"
        ))
        .bind(user.as_uuid())
        .bind(scope.as_str());
        Ok(run!(self, query, fetch_one)?.0.unwrap_or_default())
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
            .connect(&config.url)
            .await?;
        Ok(Self { pool, statement_timeout: config.statement_timeout })
    }

    /// Safe to run from several replicas at once: sqlx serialises migrators with an advisory lock.
    pub async fn migrate(&self) -> RepoResult<()> {
        sqlx::migrate!("../../migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| RepoError::Other(format!("migration failed: {e}")))
    }

    /// A unit of work whose every statement ends, on the server too, by the deadline. Writes
    /// open a transaction and bound it with `SET LOCAL`; reads run in autocommit mode with a
    /// session-level timeout, which every later unit of work on the connection overwrites.
    async fn unit_of_work(&self, deadline: Deadline, write: bool) -> RepoResult<SqlxUnitOfWork<Postgres>> {
        let deadline = deadline.tightened_by(self.statement_timeout);
        let conn = bounded(deadline, self.pool.acquire()).await.map_err(RepoError::from_acquire)?;
        // `statement_timeout = 0` would mean "no limit": never send less than 1 ms.
        let budget_ms = deadline.remaining().as_millis().max(1);
        let mut uow = SqlxUnitOfWork::new(conn, deadline);
        // The interpolated value is an integer, never client input; BEGIN and SET travel in
        // one round trip.
        let setup = if write {
            uow.transaction_open = true;
            format!("BEGIN READ WRITE; SET LOCAL statement_timeout = {budget_ms}")
        } else {
            format!("SET statement_timeout = {budget_ms}")
        };
        run!(uow, sqlx::raw_sql(AssertSqlSafe(setup)), execute)?;
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
