//! `cargo xtask abuse`: what a burst of unauthenticated logins costs a separate release
//! process. 300 concurrent logins with random usernames once took the server from 12 MB to
//! 6 GB; with hashing bounded (at most `slots` hashes at once, 4× that many waiting), the
//! resident set may grow by at most ~(slots + waiters) × 20 MiB over idle, and every answer
//! must be a 401 or a 503 (never a 5xx of another kind, never a hang). Measured: +45..49 MiB
//! over an idle 15 MiB, against a bound of +200 MiB.

use std::time::{Duration, Instant};

const BURST: usize = 300;
const SLOTS: usize = 2;
/// What one argon2 hash holds at most, with room for its thread and buffers.
const PER_HASH_MIB: u64 = 20;

pub fn abuse() -> Result<(), String> {
    crate::load::build_release()?;
    // As if from 300 addresses: the per-address login bucket (which would answer most of
    // one address's burst with 429 before any hashing) is opened, so that what is measured is
    // the bound on hashing itself, the one a distributed attacker meets.
    let server = crate::load::start(&[
        ("STRIDE_HASH_CONCURRENCY", SLOTS.to_string()),
        ("STRIDE_LOGINS_PER_MINUTE", "1000000".to_string()),
    ])?;
    let pid = server.child.id();
    // Warm up: one login, so allocator pools and the dummy hash exist before "idle" is read.
    crate::load::request(server.port, "POST", "/api/v1/auth/login", None, Some(&login_body(0)))?;
    let idle = rss_kib(pid)?;
    let started = Instant::now();
    let peak = std::sync::atomic::AtomicU64::new(idle);
    let done = std::sync::atomic::AtomicBool::new(false);
    let statuses: Vec<Result<u16, String>> = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(now) = rss_kib(pid) {
                    peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let logins: Vec<_> = (1..=BURST)
            .map(|n| {
                scope.spawn(move || {
                    crate::load::request(server.port, "POST", "/api/v1/auth/login", None, Some(&login_body(n)))
                        .map(|(status, _)| status)
                })
            })
            .collect();
        let statuses = logins.into_iter().map(|login| login.join().unwrap_or(Err("panicked".into()))).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = sampler.join();
        statuses
    });
    let took = started.elapsed();
    let peak = peak.into_inner();
    let count = |wanted: u16| statuses.iter().filter(|s| **s == Ok(wanted)).count();
    let (unauthorized, busy) = (count(401), count(503));
    let bound_kib = (SLOTS as u64 + 4 * SLOTS as u64) * PER_HASH_MIB * 1024;
    println!(
        "{BURST} concurrent logins with random usernames in {:.1} s: {unauthorized} × 401, {busy} × 503; \
         RSS idle {} MiB, peak {} MiB (+{} MiB; bound +{} MiB)",
        took.as_secs_f64(),
        idle / 1024,
        peak / 1024,
        peak.saturating_sub(idle) / 1024,
        bound_kib / 1024
    );
    if unauthorized + busy != BURST {
        let other: Vec<_> = statuses.iter().filter(|s| !matches!(s, Ok(401 | 503))).take(5).collect();
        return Err(format!("answers other than 401 and 503, e.g. {other:?}"));
    }
    if peak.saturating_sub(idle) > bound_kib {
        return Err(format!("RSS grew by {} MiB, past the bound of {} MiB", (peak - idle) / 1024, bound_kib / 1024));
    }
    Ok(())
}

fn login_body(n: usize) -> String {
    format!(r#"{{"username":"nobody_{n:05}_{}","password":"a guess"}}"#, std::process::id() % 10_000)
}

pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("read RSS: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_owned())
}
