//! The caching layer of Stride, between the generic toolkit (`workers`) and the repository.
//!
//! Today it holds [`Pool`], a hand-written async resource pool (the Go course's connection
//! pool for external services) that will carry the Redis connections of the stats cache tier;
//! the moka-backed TTL cache with request coalescing arrives with the stats work. The pool is
//! built on the `stride_workers::sync` shim rather than on `tokio::sync::Semaphore`, so that
//! loom can model its entire acquire/release/cancel path (`cargo xtask loom`).
//!
//! Architecture Invariant: depends on `workers` only among Stride crates; knows no domain type.

#![forbid(unsafe_code)]

#[cfg(all(test, stride_loom))]
mod loom_models;
mod pool;

pub use pool::{Manager, Pool, PoolConfig, PoolError, PoolStatus, Pooled};
