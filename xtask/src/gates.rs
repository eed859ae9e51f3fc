//! The correctness gates that must prove themselves live on every run: loom models (and their
//! seeded mutants), ThreadSanitizer (and its canary), and the stress loops.

use std::process::Command;
use std::time::Instant;

use crate::{project_root, run};

/// Every loom model, the crate it lives in, and the mutant loom must catch in it.
const LOOM_MUTANTS: &[(&str, &str, &str)] = &[
    ("stride-workers", "counters_lost_update", "loom_models::counters_never_lose_an_update"),
    ("stride-workers", "first_error_check_then_act", "loom_models::only_the_first_error_is_kept"),
    ("stride-cache", "pool_grant_lost_on_drop", "loom_models::a_dropped_acquire_never_loses_a_slot"),
    ("stride-cache", "pool_wakeup_without_grant", "loom_models::holders_are_exclusive_and_within_capacity"),
];

/// Crates whose code synchronises threads by hand; the loom and TSan builds contain only these
/// (and their dependencies), which keeps heavy dependencies such as the S3 SDK out.
const CONCURRENT_CRATES: &[&str] = &["stride-workers", "stride-cache"];

fn loom_command(cargo_args: &[&str]) -> Command {
    let mut command = Command::new(cargo_bin());
    command
        .current_dir(project_root())
        .args(cargo_args)
        .env("RUSTFLAGS", "--cfg stride_loom")
        .env("CARGO_TARGET_DIR", crate::target_dir().unwrap_or_else(|_| project_root().join("target")).join("loom"));
    command
}

/// `cargo xtask loom [--quick]`: every model passes, and every seeded mutant is caught.
pub fn loom(quick: bool) -> Result<(), String> {
    let preemptions = if quick { "2" } else { "3" };
    let mut args = vec!["test", "--release", "--lib"];
    for krate in CONCURRENT_CRATES {
        args.extend(["-p", krate]);
    }
    args.extend(["loom_models", "--", "--test-threads=1"]);
    let mut models = loom_command(&args);
    models.env("LOOM_MAX_PREEMPTIONS", preemptions);
    run(&mut models).map_err(|e| format!("a loom model failed on the real code: {e}"))?;

    let mut report = Vec::new();
    for (krate, mutant, model) in LOOM_MUTANTS {
        let started = Instant::now();
        let binary = build_mutant(krate, mutant)?;
        let output = Command::new(&binary)
            .args([model, "--exact", "--test-threads=1"])
            .env("LOOM_MAX_PREEMPTIONS", preemptions)
            .output()
            .map_err(|e| format!("run {}: {e}", binary))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let ran = text.contains("running 1 test");
        let caught = !output.status.success() && ran && (text.contains("panicked") || text.contains("deadlock"));
        report.push((*model, *mutant, caught, started.elapsed().as_secs_f64()));
        if !caught {
            print!("{text}");
        }
    }
    println!(
        "\nloom model                                                  mutant                        caught  seconds"
    );
    for (model, mutant, caught, seconds) in &report {
        println!("{model:<59} {mutant:<29} {:<7} {seconds:>6.1}", if *caught { "yes" } else { "NO" });
    }
    match report.iter().find(|(_, _, caught, _)| !caught) {
        None => Ok(()),
        Some((model, mutant, ..)) => {
            Err(format!("loom did not catch the mutant {mutant} in {model}: the model is too weak"))
        }
    }
}

/// Builds one crate's unit-test binary with one mutant switched on (only that crate is
/// recompiled) and returns the binary's path.
fn build_mutant(krate: &str, mutant: &str) -> Result<String, String> {
    let cfg = format!("stride_mutant=\"{mutant}\"");
    let output = loom_command(&[
        "rustc",
        "-p",
        krate,
        "--lib",
        "--profile",
        "bench",
        "--message-format=json-render-diagnostics",
        "--",
        "--cfg",
        &cfg,
    ])
    .output()
    .map_err(|e| format!("build mutant {mutant}: {e}"))?;
    if !output.status.success() {
        return Err(format!("building mutant {mutant} failed:\n{}", String::from_utf8_lossy(&output.stderr)));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|msg| msg["executable"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("no test binary was built for mutant {mutant}"))
}

const TSAN_TARGET: &str = "x86_64-unknown-linux-gnu";

fn tsan_command(extra: &[&str]) -> Command {
    let root = project_root();
    let mut command = Command::new("cargo");
    command.current_dir(&root).args(["+nightly", "test", "--release", "--target", TSAN_TARGET]);
    for krate in CONCURRENT_CRATES {
        command.args(["-p", krate]);
    }
    command
        .args(extra)
        .env("RUSTFLAGS", "-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer --cfg stride_tsan_canary")
        .env("RUSTDOCFLAGS", "-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer")
        .env("CARGO_TARGET_DIR", crate::target_dir().unwrap_or_else(|_| project_root().join("target")).join("tsan"))
        .env("TSAN_OPTIONS", format!("suppressions={} halt_on_error=0", root.join("tsan.supp").display()))
        .env("STRIDE_STRESS_ITERATIONS", "10")
        // Capturing a backtrace while TSan reports a race once deadlocked the two (each held a
        // lock the other wanted, in the loader and in TSan); the reports carry their own stacks.
        .env("RUST_BACKTRACE", "0");
    command
}

/// `cargo xtask race`: the canary race must be reported, then the suites must be clean.
pub fn race() -> Result<(), String> {
    let output = tsan_command(&["--lib", "tsan_canary"]).output().map_err(|e| format!("cargo +nightly: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let reported = text.contains("WARNING: ThreadSanitizer: data race") && text.contains("tsan_canary");
    if !reported {
        print!("{text}");
        return Err("ThreadSanitizer did not report the canary's data race: the gate is blind".into());
    }
    println!("canary: ThreadSanitizer reported the seeded data race (caught)");
    run(&mut tsan_command(&["--lib", "--tests", "--", "--skip", "tsan_canary"]))
        .map_err(|e| format!("ThreadSanitizer found a problem (or a test failed): {e}"))
}

/// `cargo xtask stress`: the concurrency tests of workers and cache, many iterations, release.
pub fn stress(iterations: u32) -> Result<(), String> {
    let mut command = Command::new(cargo_bin());
    command.current_dir(project_root()).args(["test", "--release"]);
    for krate in CONCURRENT_CRATES {
        command.args(["-p", krate]);
    }
    command.args(["--tests", "stress"]).env("STRIDE_STRESS_ITERATIONS", iterations.to_string());
    run(&mut command)
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
