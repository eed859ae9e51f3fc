//! What a pool is told from outside: how to make and judge its resources, how big it may grow,
//! and what it reports.

use std::future::Future;
use std::time::Duration;

/// Makes, checks and judges the pooled resources.
pub trait Manager: Send + Sync + 'static {
    type Resource: Send + 'static;
    type Error: std::fmt::Display + Send + 'static;

    fn create(&self) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;

    /// Runs on checkout of an idle resource; `false` discards it (a new one is made instead).
    fn recycle(&self, _resource: &mut Self::Resource) -> impl Future<Output = bool> + Send {
        async { true }
    }

    /// Runs when a resource comes back; `true` discards it.
    fn is_broken(&self, _resource: &Self::Resource) -> bool {
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    pub max_size: usize,
    /// How long `acquire` waits for a resource before failing with `Timeout`.
    pub acquire_timeout: Duration,
    pub idle_timeout: Option<Duration>,
}

impl PoolConfig {
    pub fn new(max_size: usize) -> Self {
        Self { max_size: max_size.max(1), acquire_timeout: Duration::from_secs(5), idle_timeout: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError<E> {
    #[error("the pool is closed")]
    Closed,
    #[error("timed out waiting for a pooled resource")]
    Timeout,
    #[error("could not create a pooled resource: {0}")]
    Create(E),
}

/// Counts at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Resources in existence or being made.
    pub size: usize,
    pub idle: usize,
    pub waiting: usize,
    pub closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_always_has_room_for_one() {
        assert_eq!(PoolConfig::new(0).max_size, 1);
        assert_eq!(PoolConfig::new(8).max_size, 8);
    }

    #[test]
    fn creation_errors_keep_their_cause() {
        let error = PoolError::Create("connection refused");
        assert_eq!(error.to_string(), "could not create a pooled resource: connection refused");
    }
}
