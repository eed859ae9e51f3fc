//! `cargo xtask fuzz-tracks [--secs N]`: libFuzzer (`cargo fuzz`, nightly) on each track
//! reader — GPX, TCX, FIT and stored points — for N seconds each (default 20), seeded with the
//! third-party fixtures. Built as the product is (release, without overflow checks: fitparser
//! subtracts past zero in a debug build on some truncated chained files, where a release build
//! wraps and reports the file as malformed), with AddressSanitizer. A crash fails the stage and leaves its input under
//! `fuzz/artifacts/<target>/` to reproduce with `cargo +nightly fuzz run --release <target> <file>`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::project_root;

const TARGETS: [(&str, &[&str]); 4] =
    [("gpx", &["gpx", "gpxpy"]), ("tcx", &[]), ("fit", &["fitparser"]), ("stored", &[])];

pub fn fuzz_tracks(seconds: u32) -> Result<(), String> {
    ensure_cargo_fuzz()?;
    let (fixtures, _) = crate::fixtures::ensure()?;
    let root = project_root();
    for (target, seed_dirs) in TARGETS {
        let corpus = crate::target_dir()?.join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        seed(&corpus, &fixtures, seed_dirs)?;
        let mut command = Command::new("cargo");
        command
            .current_dir(&root)
            .args(["+nightly", "fuzz", "run", "--release", "--fuzz-dir", "fuzz", target])
            .arg(&corpus)
            .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=2048", "-max_len=262144"]);
        // The first target builds the fuzz crate (a few minutes cold); the rest reuse it.
        crate::run_within(&mut command, Duration::from_secs(u64::from(seconds) + 900))?;
    }
    Ok(())
}

/// Copies the fixtures of `dirs` into the corpus (the file names are their own: re-seeding
/// overwrites, never duplicates).
fn seed(corpus: &Path, fixtures: &Path, dirs: &[&str]) -> Result<(), String> {
    for dir in dirs {
        for entry in std::fs::read_dir(fixtures.join(dir)).map_err(|e| e.to_string())?.flatten() {
            let path = entry.path();
            if path.is_file() && path.extension().is_some_and(|e| e != "complete") {
                let name = format!("{dir}-{}", entry.file_name().to_string_lossy());
                std::fs::copy(&path, corpus.join(name)).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = crate::output(Command::new("cargo").args(["fuzz", "--version"]), Duration::from_secs(60))
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!("installing cargo-fuzz (about 2 minutes)");
        crate::run_within(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]), Duration::from_secs(900))?;
    }
    Ok(())
}
