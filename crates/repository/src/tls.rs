//! The binary's one TLS stack: rustls with the `ring` provider.
//!
//! reqwest is built with `rustls-no-provider` (its `rustls` feature would bring aws-lc-rs and
//! its C build), so a process-wide provider must be installed before any client is built.

/// Installs ring as the process's rustls provider; idempotent (a provider already installed,
/// by us or by a test, is kept).
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
