//! The generic concurrency toolkit under every Stride use case.
//!
//! This crate knows nothing about activities or users: it offers the building blocks that the
//! repository, service and server layers compose — a [`Deadline`] that travels from an HTTP
//! request down to a database statement, a [`WorkerPool`] (the job runner), a staged
//! [`Pipeline`] (photo re-processing), bounded fan-out ([`try_map_concurrent`], the feed), a
//! [`TaskGroup`] with first-error cancellation and [`retry`] with backoff (the photo upload), and
//! a [`MemoryBudget`] that large buffers reserve before they are allocated (upload bodies, decoded
//! pixels).
//! Every primitive has a caller in the product; the course's examples live in `stride-course`. Each type's doc comment states its guarantees:
//! ordering, cancellation, what happens on panic, and what is never leaked.
//!
//! Hand-written synchronisation takes its locks and atomics from the `sync` shim, so the loom
//! models (`cargo xtask loom`) and ThreadSanitizer (`cargo xtask race`) check the shipping code.
//!
//! Architecture Invariant: no dependency on any other Stride crate; nothing domain-specific.

#![cfg_attr(not(stride_tsan_canary), forbid(unsafe_code))]

mod budget;
mod counters;
mod deadline;
mod fan_out;
mod first_error;
#[cfg(all(test, stride_loom))]
mod loom_models;
mod outcome;
mod pipeline;
mod retry;
pub mod sync;
mod task_group;
pub mod testing;
#[cfg(all(test, stride_tsan_canary))]
mod tsan_canary;
mod worker_pool;

pub use budget::{BudgetError, MemoryBudget, Reservation};
pub use counters::{CounterSnapshot, Counters};
pub use deadline::{Deadline, DeadlineExceeded};
pub use fan_out::try_map_concurrent;
pub use outcome::Outcome;
pub use pipeline::{Pipeline, PipelineBuilder, PipelineClosed, StageFailure};
pub use retry::{RetryError, RetryPolicy, retry};
pub use task_group::{GroupError, TaskGroup};
pub use worker_pool::{JobId, PoolClosed, WorkerPool};
