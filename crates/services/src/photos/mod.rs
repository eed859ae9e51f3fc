//! Photos: what an upload becomes. For now the CPU half, [`process`]; the upload path (a
//! `TaskGroup` of at most 5 photos per request on the shared CPU pool, both versions stored
//! concurrently through `retry`, all or nothing) and the batch re-processing pipeline build on it.

pub mod process;

pub use process::{PhotoError, PhotoFormat, PhotoLimits, Processed, Rendition};
