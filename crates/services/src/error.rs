//! What can go wrong in a use case, in terms a client can act on. The http layer maps each
//! variant to one status code; infrastructure details stay in the `Internal` text, which is
//! logged and never sent to clients.

use std::time::Duration;

use stride_concurrency::DeadlineExceeded;
use stride_repository::RepoError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// Well-formed input that breaks a rule; `field` names the culprit.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid username or password")]
    BadCredentials,
    /// Also the answer for things that exist but the caller may not see or change.
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed input that the thing's state refuses (422 with `code`), e.g. a change to a
    /// figure a recorded track decides.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("too many attempts; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// A quota of the caller's used up (429 `rate_limited`); the message says which.
    #[error("{message}; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration, message: String },
    /// Too much work queued already (e.g. password hashing); come back after `retry_after`.
    #[error("busy; retry after {retry_after:?}")]
    Busy { retry_after: Duration },
    #[error("deadline exceeded")]
    Timeout,
    /// A body or a file past its size limit (413); the message names which.
    #[error("{0}")]
    TooLarge(String),
    /// The user's storage quota would be exceeded (413 `quota_exceeded`); the message names the
    /// usage and the quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A file in a format Stride does not take (415); the message names the file.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// Object storage failed after its retries; the request changed nothing.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<RepoError> for ServiceError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::NotFound => ServiceError::NotFound,
            RepoError::Timeout => ServiceError::Timeout,
            RepoError::Unavailable(why) => ServiceError::Unavailable(why),
            // A constraint the service did not anticipate is a bug, not the client's fault.
            RepoError::Conflict { constraint } => {
                ServiceError::Internal(format!("unexpected conflict on {constraint}"))
            }
            RepoError::Corrupt(why) | RepoError::Other(why) => ServiceError::Internal(why),
        }
    }
}

impl From<DeadlineExceeded> for ServiceError {
    fn from(_: DeadlineExceeded) -> Self {
        ServiceError::Timeout
    }
}
