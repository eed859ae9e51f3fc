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

use sqlx::Database;
use sqlx::pool::PoolConnection;
use stride_workers::Deadline;

use crate::{RepoError, RepoResult};

pub struct SqlxUnitOfWork<DB: Database> {
    pub(crate) conn: PoolConnection<DB>,
    pub(crate) deadline: Deadline,
    /// True from `BEGIN` until `COMMIT` succeeded (writes only).
    pub(crate) transaction_open: bool,
    /// True while a statement is on the wire, and for good once one was abandoned (its reply
    /// may still be in the socket).
    pub(crate) statement_in_flight: bool,
}

impl<DB: Database> SqlxUnitOfWork<DB> {
    pub(crate) fn new(conn: PoolConnection<DB>, deadline: Deadline) -> Self {
        Self { conn, deadline, transaction_open: false, statement_in_flight: false }
    }
}

impl<DB: Database> Drop for SqlxUnitOfWork<DB> {
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

/// Runs one statement of a unit of work under its deadline, keeping `statement_in_flight`
/// honest: it stays set if the statement was abandoned, whether by the deadline here or by the
/// caller dropping the whole future.
macro_rules! run {
    ($uow:expr, $query:expr, $method:ident) => {{
        $uow.statement_in_flight = true;
        let result = $crate::tx::bounded($uow.deadline, $query.$method(&mut *$uow.conn)).await;
        if !matches!(result, Err($crate::RepoError::Timeout)) {
            $uow.statement_in_flight = false;
        }
        result
    }};
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
