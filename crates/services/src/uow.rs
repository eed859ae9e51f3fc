//! How a use case ends its write unit of work.

use stride_repository::UnitOfWork;

use crate::ServiceResult;

/// Commits when the use case succeeded. On an ordinary error (not found, a conflict, a rule)
/// it rolls back, which keeps the connection for the next request; only a unit of work that is
/// *dropped* — the request was cancelled or ran out of time — closes its connection.
pub(crate) async fn finish<U: UnitOfWork, T>(uow: U, outcome: ServiceResult<T>) -> ServiceResult<T> {
    match outcome {
        Ok(value) => {
            uow.commit().await?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = uow.rollback().await {
                tracing::debug!(error = %rollback, "rollback failed; the connection will be closed");
            }
            Err(error)
        }
    }
}
