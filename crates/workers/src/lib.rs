//! The generic concurrency toolkit under every Stride use case.
//!
//! This crate knows nothing about activities or users: it offers the building blocks that the
//! repository, service and server layers compose — a [`Deadline`] that travels from an HTTP
//! request down to a database statement, and (as the toolkit grows) worker pools, pipelines,
//! bounded fan-out and task groups.
//!
//! Architecture Invariant: no dependency on any other Stride crate; nothing domain-specific.

mod deadline;

pub use deadline::{Deadline, DeadlineExceeded};
