//! The caching layer of Stride, between the generic toolkit (`workers`) and the repository.
//!
//! It holds [`Pool`], a hand-written async resource pool (the Go course's connection pool for
//! external services), and — behind the `redis` feature — [`RedisTier`], the optional shared
//! cache tier whose connections that pool carries. (The in-process moka cache with request
//! coalescing lives with the statistics use case, which owns its keys and expiry rules.) The pool is
//! built on the `stride_concurrency::sync` shim rather than on `tokio::sync::Semaphore`, so that
//! loom can model its entire acquire/release/cancel path (`cargo xtask loom`).
//!
//! Architecture Invariant: depends on `workers` only among Stride crates; knows no domain type.

#![forbid(unsafe_code)]

#[cfg(all(test, stride_loom))]
mod loom_models;
mod pool;
#[cfg(feature = "redis")]
mod redis_tier;

pub use pool::{Manager, Pool, PoolConfig, PoolError, PoolStatus, Pooled};
#[cfg(feature = "redis")]
pub use redis_tier::RedisTier;
