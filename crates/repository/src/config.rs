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

#[derive(Clone)]
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

/// The URL may carry a password: it is redacted.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("statement_timeout", &self.statement_timeout)
            .field("ping_idle_after", &self.ping_idle_after)
            .finish()
    }
}

/// A connection URL fit to print: any password (everything between `://` and the last `@`) is
/// replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://***@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
        let debug = format!("{:?}", StoreConfig::new("postgres://stride:hunter2@db:5432/stride"));
        assert!(!debug.contains("hunter2") && debug.contains("db:5432"), "{debug}");
    }

    #[test]
    fn the_backend_is_read_from_the_url_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("mysql://h/db"), None);
    }
}
