//! Shared by the stress tests of this crate and of `cache` (one definition, not a copy per
//! test file): how many times a stress loop repeats. `cargo xtask stress` raises it through
//! `STRIDE_STRESS_ITERATIONS`; a plain `cargo test` keeps it short.

/// Iterations of a stress loop: `STRIDE_STRESS_ITERATIONS`, or 20.
pub fn stress_iterations() -> u64 {
    std::env::var("STRIDE_STRESS_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}
