//! Logging setup: one subscriber for the process, filter and format from configuration.

use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Installs the global subscriber; a second call (tests building several apps) is a no-op.
pub fn init_telemetry(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("invalid STRIDE_LOG filter {filter:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
