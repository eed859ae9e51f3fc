//! The one error type of the persistence layer. `sqlx::Error` is translated here and never
//! travels further up.

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference constraint refused the write; `constraint` names it.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The caller's deadline (or the configured per-call limit) passed.
    #[error("database deadline exceeded")]
    Timeout,
    /// The database could not be reached or has no free connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value no longer parses as its domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type RepoResult<T> = Result<T, RepoError>;

/// PostgreSQL's `query_canceled`, raised when `statement_timeout` fires.
const PG_QUERY_CANCELED: &str = "57014";
/// SQLite's `SQLITE_BUSY` and `SQLITE_LOCKED`: the single-writer design should make them
/// unreachable, but if they happen they are load, not a bug in the request.
const SQLITE_BUSY_CODES: [&str; 2] = ["5", "6"];
/// SQLite's `SQLITE_INTERRUPT`, raised when our progress handler stops a statement at its deadline.
const SQLITE_INTERRUPT: &str = "9";

/// SQLSTATEs that say "the server cannot serve you now", not "your statement is wrong":
/// connection exceptions (08), insufficient resources (53), operator intervention such as an
/// admin shutdown (57P01–57P05).
fn is_pg_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || (code.starts_with("57P") && code != PG_QUERY_CANCELED)
}

impl RepoError {
    /// Whatever goes wrong while *getting* a connection means the database is unavailable
    /// (e.g. PostgreSQL's "database is not accepting connections", 55000), unless it is our
    /// own deadline.
    pub(crate) fn from_acquire(err: RepoError) -> RepoError {
        match err {
            RepoError::Timeout | RepoError::Unavailable(_) => err,
            other => RepoError::Unavailable(other.to_string()),
        }
    }
}

impl RepoError {
    pub(crate) fn migration(err: sqlx::migrate::MigrateError) -> RepoError {
        RepoError::Other(format!("migration failed: {err}"))
    }
}

impl From<sqlx::Error> for RepoError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => RepoError::NotFound,
            sqlx::Error::PoolTimedOut => RepoError::Unavailable("no free database connection".into()),
            sqlx::Error::PoolClosed => RepoError::Unavailable("database pool is closed".into()),
            sqlx::Error::Io(e) => RepoError::Unavailable(e.to_string()),
            sqlx::Error::Tls(e) => RepoError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() || db.is_foreign_key_violation() {
                    let constraint = db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned());
                    return RepoError::Conflict { constraint };
                }
                match db.code().as_deref() {
                    Some(PG_QUERY_CANCELED | SQLITE_INTERRUPT) => RepoError::Timeout,
                    Some(code) if is_pg_unavailable(code) => RepoError::Unavailable(db.message().to_owned()),
                    Some(code) if SQLITE_BUSY_CODES.contains(&code) => RepoError::Unavailable(db.message().to_owned()),
                    _ => RepoError::Other(db.to_string()),
                }
            }
            other => RepoError::Other(other.to_string()),
        }
    }
}
