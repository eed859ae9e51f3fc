//! The correctness gates that must prove themselves live on every run: loom models (and their
//! seeded mutants), ThreadSanitizer (and its canary), and the stress loops.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{output, project_root, run};

/// A loom mutant's build recompiles one crate; its run explores one model. Either past this is
/// hung, not slow.
const MUTANT_BUILD_LIMIT: Duration = Duration::from_secs(600);
const MUTANT_RUN_LIMIT: Duration = Duration::from_secs(300);
/// The TSan canary's build compiles the concurrent crates and their dependencies cold.
const CANARY_LIMIT: Duration = Duration::from_secs(900);

/// Every loom model, the crate it lives in, and the mutant loom must catch in it.
const LOOM_MUTANTS: &[(&str, &str, &str)] = &[
    ("stride-concurrency", "counters_lost_update", "loom_models::counters_never_lose_an_update"),
    ("stride-concurrency", "first_error_check_then_act", "loom_models::only_the_first_error_is_kept"),
    ("stride-cache", "pool_grant_lost_on_drop", "loom_models::a_dropped_acquire_never_loses_a_slot"),
    ("stride-cache", "pool_wakeup_without_grant", "loom_models::holders_are_exclusive_and_within_capacity"),
];

/// Crates whose code synchronises threads by hand; the loom and TSan builds contain only these
/// (and their dependencies), which keeps heavy dependencies such as the S3 SDK out.
const CONCURRENT_CRATES: &[&str] = &["stride-concurrency", "stride-cache"];

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
        let output = output(
            Command::new(&binary).args([model, "--exact", "--test-threads=1"]).env("LOOM_MAX_PREEMPTIONS", preemptions),
            MUTANT_RUN_LIMIT,
        )?;
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
    let output = output(
        &mut loom_command(&[
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
        ]),
        MUTANT_BUILD_LIMIT,
    )
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
/// Iterations of each stress loop under TSan, which runs them ~10× slower.
const TSAN_ITERATIONS: u32 = 300;

fn tsan_command(extra: &[&str]) -> Command {
    let root = project_root();
    let mut command = Command::new("cargo");
    command.current_dir(&root).args(["+nightly", "test", "--release", "--target", TSAN_TARGET]);
    for krate in CONCURRENT_CRATES {
        command.args(["-p", krate]);
    }
    command
        .args(extra)
        // v0 mangling keeps generic arguments in symbol names (`Arc<tokio::…>::drop_slow`), so a
        // suppression can name whose `Arc` it covers.
        .env(
            "RUSTFLAGS",
            "-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer -Csymbol-mangling-version=v0 --cfg stride_tsan_canary",
        )
        .env("RUSTDOCFLAGS", "-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer")
        .env("CARGO_TARGET_DIR", crate::target_dir().unwrap_or_else(|_| project_root().join("target")).join("tsan"))
        .env("TSAN_OPTIONS", tsan_options())
        .env("STRIDE_STRESS_ITERATIONS", TSAN_ITERATIONS.to_string())
        // Capturing a backtrace while TSan reports a race once deadlocked the two (each held a
        // lock the other wanted, in the loader and in TSan); the reports carry their own stacks.
        .env("RUST_BACKTRACE", "0");
    command
}

/// `cargo xtask race`: the canary race must be reported, then the suites must be clean.
///
/// One false positive is not suppressed in `tsan.supp` but recognised here, by its exact
/// shape: `Arc`'s drop orders the free after the last use with an acquire *fence* compiled
/// into uninstrumented std, which TSan cannot see (rust-lang/rust#39608). A suppression
/// matching `Arc::drop_slow` anywhere in a stack would also hide a race in the `Drop` of any
/// type of ours held in an `Arc`; [`is_arc_fence_false_positive`] accepts a report only when
/// nothing but std's deallocation runs between `drop_slow` and the free, and the `Arc` holds
/// no type of ours.
pub fn race() -> Result<(), String> {
    let output = output(&mut tsan_command(&["--lib", "tsan_canary"]), CANARY_LIMIT)?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let reported = text.contains("WARNING: ThreadSanitizer: data race") && text.contains("tsan_canary");
    if !reported {
        print!("{text}");
        return Err("ThreadSanitizer did not report the canary's data race: the gate is blind".into());
    }
    println!("canary: ThreadSanitizer reported the seeded data race (caught)");

    let log = crate::target_dir()?.join("tsan-suites.log");
    let mut suites = tsan_command(&["--no-fail-fast", "--lib", "--tests", "--", "--skip", "tsan_canary"]);
    // Reports are judged below, one by one; TSan's own exit code would fail the run on the
    // recognised false positive too.
    suites.env("TSAN_OPTIONS", format!("{} exitcode=0", tsan_options()));
    let status = crate::run_logged(&mut suites, &log)?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("read {}: {e}", log.display()))?;
    let reports = tsan_reports(&text);
    let (benign, real): (Vec<&str>, Vec<&str>) = reports.iter().partition(|r| is_arc_fence_false_positive(r));
    let tests: usize = text.lines().filter_map(passed_count).sum();
    for report in &real {
        println!("{report}");
    }
    let (unmatched, intermittent) = unmatched_suppressions(&text)?;
    let listed = |patterns: &[String]| if patterns.is_empty() { "none".to_owned() } else { patterns.join(", ") };
    println!(
        "ThreadSanitizer: {tests} tests passed; {} reports, {} of them the known Arc-fence false positive; \
         suppressions that matched nothing: {} (intermittent ones: {})",
        reports.len(),
        benign.len(),
        listed(&unmatched),
        listed(&intermittent)
    );
    if !unmatched.is_empty() {
        return Err(format!(
            "suppressions in tsan.supp matched nothing in the whole run: {}. A suppression that no longer \
             matches hides nothing today and may hide a real race tomorrow; delete it",
            unmatched.join(", ")
        ));
    }
    let empty = suites_that_ran_nothing(&text);
    if !empty.is_empty() {
        return Err(format!("test binaries ran no test under ThreadSanitizer: {}", empty.join(", ")));
    }
    if !status.success() {
        let failures: Vec<&str> = text.lines().filter(|l| l.contains("FAILED") || l.contains("panicked")).collect();
        return Err(format!("a test failed under ThreadSanitizer (log: {}):\n{}", log.display(), failures.join("\n")));
    }
    if !real.is_empty() {
        return Err(format!(
            "ThreadSanitizer reported {} data race(s), shown above (log: {})",
            real.len(),
            log.display()
        ));
    }
    Ok(())
}

fn tsan_options() -> String {
    let supp = project_root().join("tsan.supp");
    format!("suppressions={} halt_on_error=0 print_suppressions=1", supp.display())
}

/// Each `WARNING: ThreadSanitizer` report of a log, from its warning line to its closing rule.
fn tsan_reports(log: &str) -> Vec<&str> {
    let mut reports = Vec::new();
    let mut rest = log;
    while let Some(start) = rest.find("WARNING: ThreadSanitizer:") {
        let body = &rest[start..];
        let end = body.find("==================").unwrap_or(body.len());
        reports.push(&body[..end]);
        rest = &body[end..];
    }
    reports
}

/// The one shape accepted: the access reported first (the thread that dropped the last `Arc`)
/// runs inside `<Arc<T>>::drop_slow`, and every frame between `drop_slow` and the access is
/// std's or a dependency's code: T's own `Drop` glue, the free. A frame of our workspace there
/// (a `Drop` of ours) and the report stands. What the other thread did is not examined: in this
/// false positive it is that thread's last use before its own decrement, which may well be our
/// code. That is sound because the crates under TSan forbid `unsafe`: our code cannot reach
/// memory an `Arc` has freed except through the `Arc` itself.
fn is_arc_fence_false_positive(report: &str) -> bool {
    is_arc_fence_shape(report, &project_root().join("crates").display().to_string())
}

fn is_arc_fence_shape(report: &str, our_sources: &str) -> bool {
    let first_stack = report.lines().skip(1).take_while(|line| !line.trim().is_empty());
    let frames: Vec<&str> = first_stack.filter(|line| line.trim_start().starts_with('#')).collect();
    let Some(drop_slow) = frames.iter().position(|frame| frame.contains(">>::drop_slow ")) else {
        return false;
    };
    !frames[..drop_slow].iter().any(|frame| frame.contains(our_sources))
}

/// The test binaries whose run executed no test (`Running …` followed by `running 0 tests`):
/// a filter or a cfg that silently empties a suite must fail the gate, not pass it.
fn suites_that_ran_nothing(log: &str) -> Vec<String> {
    let mut empty = Vec::new();
    let mut binary = None;
    for line in log.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Running ") {
            binary = Some(rest.to_owned());
        } else if line == "running 0 tests"
            && let Some(binary) = binary.take()
        {
            empty.push(binary);
        }
    }
    empty
}

fn passed_count(line: &str) -> Option<usize> {
    line.strip_prefix("test result: ok. ")?.split_whitespace().next()?.parse().ok()
}

/// Patterns of `tsan.supp` that matched nothing in the whole run (TSan prints, per process,
/// `N race:pattern` for each suppression it used): (those that must have matched, those marked
/// `# intermittent` on the line above, which only some schedules produce).
fn unmatched_suppressions(log: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let supp = std::fs::read_to_string(project_root().join("tsan.supp")).map_err(|e| format!("read tsan.supp: {e}"))?;
    Ok(split_unmatched(&supp, log))
}

fn split_unmatched(supp: &str, log: &str) -> (Vec<String>, Vec<String>) {
    let used: std::collections::HashSet<&str> =
        log.lines().filter_map(|line| line.trim().split_once(' ')).map(|(_, pattern)| pattern).collect();
    let (mut strict, mut intermittent) = (Vec::new(), Vec::new());
    let mut previous = "";
    for line in supp.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') && !used.contains(line) {
            if previous == "# intermittent" { intermittent.push(line.to_owned()) } else { strict.push(line.to_owned()) }
        }
        previous = line;
    }
    (strict, intermittent)
}

/// `cargo xtask stress`: the concurrency tests of workers and cache, many iterations, release.
/// A filter that selects no test fails: a renamed test must not turn the gate into a no-op.
pub fn stress(iterations: u32) -> Result<(), String> {
    let mut command = Command::new(cargo_bin());
    command.current_dir(project_root()).args(["test", "--release"]);
    for krate in CONCURRENT_CRATES {
        command.args(["-p", krate]);
    }
    command.args(["--tests", "stress"]).env("STRIDE_STRESS_ITERATIONS", iterations.to_string());
    let log = crate::target_dir()?.join("stress.log");
    let status = crate::run_logged(&mut command, &log)?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("read {}: {e}", log.display()))?;
    print!("{text}");
    if !status.success() {
        return Err(format!("a stress test failed (log: {})", log.display()));
    }
    let ran: usize = text.lines().filter_map(passed_count).sum();
    if ran == 0 {
        return Err("the stress filter selected no test: the gate ran nothing".into());
    }
    println!("stress: {ran} tests passed at {iterations} iterations");
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARC_FENCE: &str = "WARNING: ThreadSanitizer: data race (pid=1)
  Write of size 8 at 0x7208 by thread T4:
    #0 free /rustc/llvm/src/llvm-project/compiler-rt/lib/tsan/rtl/tsan_interceptors_posix.cpp:735:3 (pool+0x9d)
    #1 dealloc_nonnull /rustc/x/library/alloc/src/alloc.rs:128:14 (pool+0x1b)
    #2 drop_glue<alloc::sync::Weak<tokio::sync::oneshot::Sender<()>, &alloc::alloc::Global>> /rustc/x/library/core/src/ptr/mod.rs:825:1 (pool+0x1b)
    #3 <alloc::sync::Arc<tokio::sync::oneshot::Sender<()>>>::drop_slow /rustc/x/library/alloc/src/sync.rs:2144:5 (pool+0x1b)
    #4 {closure#0} /root/.cargo/registry/src/tokio-1.54.1/src/runtime/blocking/pool.rs:526:13 (pool+0x1b)

  Previous atomic write of size 8 at 0x7208 by thread T3:
    #0 atomic_sub<usize, usize> /rustc/x/library/core/src/sync/atomic.rs:3956:24 (pool+0x1b)
";

    const OURS: &str = "/work/crates";

    #[test]
    fn the_arc_fence_false_positive_is_recognised_by_its_shape() {
        assert!(is_arc_fence_shape(ARC_FENCE, OURS));
    }

    #[test]
    fn a_race_in_a_drop_of_ours_under_drop_slow_is_not_excused() {
        let ours = ARC_FENCE.replace(
            "    #1 dealloc_nonnull",
            "    #1 <stride_cache::Pool as core::ops::Drop>::drop /work/crates/cache/src/pool.rs:10:5 (pool+0x1)\n    #2 dealloc_nonnull",
        );
        assert!(!is_arc_fence_shape(&ours, OURS));
        let without_drop_slow = ARC_FENCE.replace(">>::drop_slow", ">>::drop");
        assert!(!is_arc_fence_shape(&without_drop_slow, OURS));
        // Only the first stack counts: a drop_slow in the other thread's stack excuses nothing.
        let in_the_other_stack = without_drop_slow.replace(
            "    #0 atomic_sub<usize, usize>",
            "    #0 <alloc::sync::Arc<tokio::X>>::drop_slow /rustc/x/library/alloc/src/sync.rs:1:1",
        );
        assert!(!is_arc_fence_shape(&in_the_other_stack, OURS));
    }

    #[test]
    fn an_unmatched_suppression_fails_unless_marked_intermittent() {
        let supp = "# why\nrace:a\n\n# intermittent\nrace:b\n# intermittent\nrace:c\nrace:d\n";
        let log = "ThreadSanitizer: Matched 3 suppressions\n    3 race:c\n";
        assert_eq!(
            split_unmatched(supp, log),
            (vec!["race:a".to_owned(), "race:d".to_owned()], vec!["race:b".to_owned()])
        );
    }

    #[test]
    fn a_suite_that_ran_no_test_is_named() {
        let log = "     Running unittests src/lib.rs (target/tsan/x/deps/stride_concurrency-1)\nrunning 12 tests\n\
                   test result: ok. 12 passed; 0 failed\n     Running tests/pool.rs (target/tsan/x/deps/pool-2)\n\
                   running 0 tests\ntest result: ok. 0 passed; 0 failed\n";
        assert_eq!(suites_that_ran_nothing(log), vec!["tests/pool.rs (target/tsan/x/deps/pool-2)".to_owned()]);
        assert!(suites_that_ran_nothing("Running a\nrunning 3 tests\n").is_empty());
    }

    #[test]
    fn reports_are_cut_at_their_closing_rule_and_suppressions_are_counted() {
        let log = format!(
            "==================\n{ARC_FENCE}==================\nok\n==================\n{ARC_FENCE}==================\n"
        );
        assert_eq!(tsan_reports(&log).len(), 2);
        assert_eq!(passed_count("test result: ok. 12 passed; 0 failed"), Some(12));
    }
}
