//! How a store connects; the backend is chosen once, from the URL.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Connections in the (reader) pool. SQLite additionally keeps one dedicated writer.
    pub max_connections: u32,
    /// The longest any single unit of work may take, even if the caller's deadline is later.
    pub statement_timeout: Duration,
    /// PostgreSQL: a pooled connection idle at least this long is pinged before it is handed
    /// out (one used more recently was pinged by sqlx as it came back to the pool).
    pub ping_idle_after: Duration,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            statement_timeout: Duration::from_secs(5),
            ping_idle_after: Duration::from_secs(1),
        }
    }
}
