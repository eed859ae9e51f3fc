//! The unit of work shared by both backends: one pooled connection, and for writes one
//! transaction on it.
//!
//! We issue `BEGIN`/`COMMIT` ourselves instead of using `sqlx::Transaction`, because the
//! cancellation story must be airtight. The connection goes back to the pool only in a known
//! state: no transaction open and no statement cut off mid-flight. Otherwise — a cancelled
//! request, an expired deadline, a write dropped before `commit`, even a future dropped in the
//! middle of `BEGIN` (sqlx issues #4385/#4393) — it is *closed* instead; the server rolls any
//! transaction back, and no later request can inherit an open transaction or an unread reply.

use std::future::Future;

use sqlx::Pool;
use sqlx::pool::PoolConnection;
use stride_concurrency::Deadline;

use crate::dialect::{Columns, Dialect, Param};

/// The in-process channel job kinds are announced on (see [`SqlxUnitOfWork::announce_jobs_on`]).
pub(crate) type LocalWakeups = std::sync::Arc<tokio::sync::broadcast::Sender<String>>;
use crate::{RepoError, RepoResult, UnitOfWork};

/// Shared by a store and its units of work. A unit of work whose connection failed (the server
/// restarted, a network blip), or that could not get one, says so here, and for `SUSPICION`
/// afterwards the store checks every pooled connection before handing it out (connections die
/// together, so without this each dead one would still cost a request its failure after the
/// database is back) and waits at most `OUTAGE_WAIT` for one (`cargo xtask durability`
/// measures both).
#[derive(Debug, Default)]
pub(crate) struct ConnectionHealth {
    /// Until when pooled connections are suspect. A std mutex: held to copy or replace one
    /// value, never across an await.
    suspect_until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ConnectionHealth {
    const SUSPICION: std::time::Duration = std::time::Duration::from_secs(5);
    /// The longest a request waits for a connection while the database is suspected down.
    const OUTAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

    fn connection_failed(&self) {
        let until = std::time::Instant::now() + Self::SUSPICION;
        *self.suspect_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
    }

    pub(crate) fn suspect(&self) -> bool {
        let until = *self.suspect_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| std::time::Instant::now() < until)
    }
}

pub struct SqlxUnitOfWork<DB: Dialect> {
    conn: PoolConnection<DB>,
    /// Where an engine without LISTEN/NOTIFY (SQLite) tells this process's job runner about
    /// jobs enqueued here — once the unit of work commits, never if it rolls back.
    local_wakeups: Option<LocalWakeups>,
    /// The kinds enqueued so far, announced on commit.
    enqueued_kinds: Vec<String>,
    /// Where a connection failure is reported, for stores whose connections can die together.
    health: Option<std::sync::Arc<ConnectionHealth>>,
    deadline: Deadline,
    /// True from `BEGIN` until `COMMIT` succeeded (writes only).
    transaction_open: bool,
    /// True while a statement is on the wire, and for good once one was abandoned (its reply
    /// may still be in the socket).
    statement_in_flight: bool,
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    /// Takes a connection from `pool` within `deadline`; a pool that cannot hand one out in
    /// time reports `Unavailable`, not `Timeout`, because no statement ran.
    pub(crate) async fn acquire(
        pool: &Pool<DB>,
        deadline: Deadline,
        health: Option<&std::sync::Arc<ConnectionHealth>>,
    ) -> RepoResult<Self> {
        // While the database is suspected down, a request waits at most `OUTAGE_WAIT` for a
        // connection instead of its whole deadline: during an outage clients get their 503 in
        // a second, not after ten, and each failed wait keeps the suspicion alive.
        let suspect = health.is_some_and(|health| health.suspect());
        let budget = if suspect { deadline.tightened_by(ConnectionHealth::OUTAGE_WAIT) } else { deadline };
        let conn = match bounded(budget, pool.acquire()).await.map_err(RepoError::from_acquire) {
            Ok(conn) => conn,
            Err(RepoError::Timeout) if !suspect => return Err(RepoError::Timeout),
            Err(RepoError::Timeout) => {
                health.inspect(|health| health.connection_failed());
                return Err(RepoError::Unavailable("the database is unreachable".into()));
            }
            Err(error) => {
                if let (RepoError::Unavailable(_), Some(health)) = (&error, health) {
                    health.connection_failed();
                }
                return Err(error);
            }
        };
        Ok(Self {
            conn,
            local_wakeups: None,
            enqueued_kinds: Vec::new(),
            health: health.cloned(),
            deadline,
            transaction_open: false,
            statement_in_flight: false,
        })
    }

    /// Opens the write transaction with `script` (`BEGIN IMMEDIATE`, or `BEGIN; SET LOCAL …`).
    pub(crate) async fn begin(&mut self, script: String) -> RepoResult<()> {
        self.transaction_open = true;
        self.on_the_wire(|conn| DB::execute_script(conn, script)).await
    }

    /// Announces the jobs this unit of work enqueues on `wakeups` when it commits.
    pub(crate) fn announce_jobs_on(&mut self, wakeups: LocalWakeups) {
        self.local_wakeups = Some(wakeups);
    }

    /// Remembers that a job of `kind` was enqueued, for the announcement on commit.
    pub(crate) fn job_enqueued(&mut self, kind: &str) {
        if self.local_wakeups.is_some() {
            self.enqueued_kinds.push(kind.to_owned());
        }
    }

    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Runs one database call under the unit's deadline, keeping `statement_in_flight` honest:
    /// it stays set if the call was abandoned, whether by the deadline here or by the caller
    /// dropping the whole future, and also when the connection itself failed (the server went
    /// away, the socket broke): such a connection is closed, never handed to the next request.
    pub(crate) async fn on_the_wire<'c, T, F>(
        &'c mut self,
        call: impl FnOnce(&'c mut DB::Connection) -> F,
    ) -> RepoResult<T>
    where
        F: Future<Output = Result<T, sqlx::Error>> + 'c,
    {
        self.statement_in_flight = true;
        let in_flight = &mut self.statement_in_flight;
        let result = bounded(self.deadline, call(&mut self.conn)).await;
        match &result {
            Err(RepoError::Timeout) => {}
            Err(RepoError::Unavailable(_)) => {
                if let Some(health) = &self.health {
                    health.connection_failed();
                }
            }
            _ => *in_flight = false,
        }
        result
    }

    /// Runs a statement; returns the rows it changed.
    pub(crate) async fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> RepoResult<u64> {
        let arguments = DB::arguments(params)?;
        self.on_the_wire(|conn| DB::execute(conn, sql, arguments)).await
    }

    /// Runs a query and decodes every row with `decode`.
    pub(crate) async fn fetch_all<T>(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        decode: impl Fn(&mut Columns<'_, DB>) -> RepoResult<T>,
    ) -> RepoResult<Vec<T>> {
        let arguments = DB::arguments(params)?;
        let rows = self.on_the_wire(|conn| DB::fetch_all(conn, sql, arguments)).await?;
        rows.iter().map(|row| decode(&mut Columns::new(row))).collect()
    }

    /// For queries that select at most one row (by key, or `LIMIT 1`).
    pub(crate) async fn fetch_optional<T>(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        decode: impl Fn(&mut Columns<'_, DB>) -> RepoResult<T>,
    ) -> RepoResult<Option<T>> {
        Ok(self.fetch_all(sql, params, decode).await?.into_iter().next())
    }

    /// For queries that always select exactly one row (aggregates, `RETURNING`).
    pub(crate) async fn fetch_one<T>(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        decode: impl Fn(&mut Columns<'_, DB>) -> RepoResult<T>,
    ) -> RepoResult<T> {
        self.fetch_optional(sql, params, decode).await?.ok_or_else(|| RepoError::Other(format!("no row from: {sql}")))
    }
}

impl<DB: Dialect> UnitOfWork for SqlxUnitOfWork<DB> {
    /// Commits a write; for a read there is nothing to commit.
    async fn commit(mut self) -> RepoResult<()> {
        if self.transaction_open {
            self.on_the_wire(|conn| DB::execute_script(conn, "COMMIT".to_owned())).await?;
            self.transaction_open = false;
        }
        if let Some(wakeups) = &self.local_wakeups {
            for kind in self.enqueued_kinds.drain(..) {
                // No receiver (no runner in this process) is fine: the poll finds the job.
                let _ = wakeups.send(kind);
            }
        }
        Ok(())
    }

    async fn rollback(mut self) -> RepoResult<()> {
        // A statement abandoned mid-flight leaves an unread reply: only closing is safe then,
        // which `Drop` does.
        if self.transaction_open && !self.statement_in_flight {
            self.on_the_wire(|conn| DB::execute_script(conn, "ROLLBACK".to_owned())).await?;
            self.transaction_open = false;
        }
        Ok(())
    }

    async fn ping(&mut self) -> RepoResult<()> {
        self.on_the_wire(|conn| DB::execute_script(conn, "SELECT 1".to_owned())).await
    }
}

impl<DB: Dialect> Drop for SqlxUnitOfWork<DB> {
    fn drop(&mut self) {
        if self.transaction_open || self.statement_in_flight {
            tracing::debug!(
                transaction_open = self.transaction_open,
                statement_in_flight = self.statement_in_flight,
                "unit of work ended uncleanly; closing its connection"
            );
            self.conn.close_on_drop();
        }
    }
}

/// Runs one database call under a deadline; on expiry the call's future is dropped mid-flight.
pub(crate) async fn bounded<T>(
    deadline: Deadline,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> RepoResult<T> {
    match deadline.run(call).await {
        Ok(result) => result.map_err(RepoError::from),
        Err(_) => Err(RepoError::Timeout),
    }
}
