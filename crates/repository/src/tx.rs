//! The unit of work shared by both backends: one pooled connection inside one transaction.
//!
//! We issue `BEGIN`/`COMMIT` ourselves instead of using `sqlx::Transaction`, because the
//! cancellation story must be airtight: if this value is dropped before `commit` completes —
//! a cancelled request, an expired deadline, a failed statement, even a future dropped in the
//! middle of `BEGIN` (sqlx issues #4385/#4393) — the connection is *closed* rather than
//! returned to the pool. The server then rolls the transaction back, and no later request can
//! inherit a connection with an open transaction or an unread response.

use std::future::Future;

use sqlx::Database;
use sqlx::pool::PoolConnection;
use stride_workers::Deadline;

use crate::{RepoError, RepoResult};

pub struct SqlxUnitOfWork<DB: Database> {
    pub(crate) conn: PoolConnection<DB>,
    pub(crate) deadline: Deadline,
    /// True from `BEGIN` until `COMMIT` succeeded. Checked on drop.
    in_flight: bool,
}

impl<DB: Database> SqlxUnitOfWork<DB> {
    /// Wraps a connection on which `BEGIN` is about to be sent; until `commit` succeeds the
    /// connection is condemned.
    pub(crate) fn new(conn: PoolConnection<DB>, deadline: Deadline) -> Self {
        Self {
            conn,
            deadline,
            in_flight: true,
        }
    }

    pub(crate) fn committed(&mut self) {
        self.in_flight = false;
    }
}

impl<DB: Database> Drop for SqlxUnitOfWork<DB> {
    fn drop(&mut self) {
        if self.in_flight {
            tracing::debug!("unit of work dropped before commit; closing its connection");
            self.conn.close_on_drop();
        }
    }
}

/// Runs one database call under the unit of work's deadline. On expiry the call's future is
/// dropped mid-flight; the connection is then in an unknown state, which is fine because an
/// uncommitted unit of work never returns its connection to the pool.
pub(crate) async fn bounded<T>(
    deadline: Deadline,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> RepoResult<T> {
    match deadline.run(call).await {
        Ok(result) => result.map_err(RepoError::from),
        Err(_) => Err(RepoError::Timeout),
    }
}
