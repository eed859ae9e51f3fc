//! The top of the layer cake: turns configuration into a running Stride.
//!
//! `server` is the only crate that knows every other one. It reads the configuration, sets up
//! telemetry, picks the storage backend from the database URL (once — everything below is
//! generic over it), applies migrations, binds the listener and serves until a shutdown
//! signal, then drains in-flight requests within a grace period and closes the pools.
//! Tests build the same [`Application`] on port 0, so they exercise exactly what production runs.

mod app;
mod config;
mod config_debug;
mod housekeeping;
pub mod import_cli;
pub mod jobs_cli;
pub mod photos_cli;
mod progress;
pub mod records_cli;
mod serve;
mod telemetry;

pub use app::{Application, migrate};
pub use config::{Config, LogFormat};
pub use telemetry::init_telemetry;
