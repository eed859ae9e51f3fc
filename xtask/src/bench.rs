//! `cargo xtask bench [--quick] [--full] [toolkit|pool|stats|photos|feed|jobs|tracks|archives|records]`: runs the criterion benchmarks (all, or
//! one suite) and enforces the ratio gates of the suites that ran.
//!
//! Gates are ratios between two measurements taken in the same run on the same machine, never
//! absolute times, so they hold on a slow CI box as well as on a laptop. The statistics gates
//! read medians of alternating rounds (`interleaved/…`, written by the stats bench); the
//! toolkit gates read criterion's medians.

use std::path::Path;
use std::process::Command;

use crate::{project_root, run};

struct Gate {
    suite: Suite,
    name: &'static str,
    /// Ratio = numerator / denominator, both criterion median times.
    numerator: &'static str,
    denominator: &'static str,
    bound: Bound,
}

enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// A criterion bench target: `cargo xtask bench <suite>` runs one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Suite {
    Toolkit,
    Pool,
    Stats,
    Photos,
    Feed,
    Jobs,
    Tracks,
    Archives,
    Records,
}

impl Suite {
    pub const ALL: [Suite; 9] = [
        Suite::Toolkit,
        Suite::Pool,
        Suite::Stats,
        Suite::Photos,
        Suite::Feed,
        Suite::Jobs,
        Suite::Tracks,
        Suite::Archives,
        Suite::Records,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|suite| suite.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Suite::Toolkit => "toolkit",
            Suite::Pool => "pool",
            Suite::Stats => "stats",
            Suite::Photos => "photos",
            Suite::Feed => "feed",
            Suite::Jobs => "jobs",
            Suite::Tracks => "tracks",
            Suite::Archives => "archives",
            Suite::Records => "records",
        }
    }

    /// (crate, bench target)
    fn target(self) -> (&'static str, &'static str) {
        match self {
            Suite::Toolkit => ("stride-concurrency", "toolkit"),
            Suite::Pool => ("stride-cache", "pool"),
            Suite::Stats => ("stride-services", "stats"),
            Suite::Photos => ("stride-services", "photos"),
            Suite::Feed => ("stride-services", "feed"),
            Suite::Jobs => ("stride-services", "jobs"),
            Suite::Tracks => ("stride-services", "tracks"),
            Suite::Archives => ("stride-services", "archives"),
            Suite::Records => ("stride-services", "records"),
        }
    }
}

/// "The product's page latency is within `bound` of the fastest strategy measured".
macro_rules! feed_product_gate {
    ($db:literal, $friends:literal, $page:literal, $bound:expr) => {
        Gate {
            suite: Suite::Feed,
            name: concat!("feed ", $db, ", ", $friends, " friends, ", $page, " page: product vs fastest strategy"),
            numerator: concat!("interleaved/feed_", $db, "/product/", $friends, "/", $page),
            denominator: concat!("interleaved/feed_", $db, "/fastest/", $friends, "/", $page),
            bound: $bound,
        }
    };
}

const GATES: &[Gate] = &[
    Gate {
        suite: Suite::Records,
        name: "records: 100k-point track, seven run efforts vs one cumulative-distance pass",
        numerator: "interleaved/records/efforts_100k",
        denominator: "interleaved/records/cumulative_distance_100k",
        bound: Bound::AtMost(3.0),
    },
    Gate {
        suite: Suite::Records,
        name: "records: records + months read on SQLite, 100k activities vs 1k",
        numerator: "interleaved/records/read_sqlite/100000",
        denominator: "interleaved/records/read_sqlite/1000",
        bound: Bound::AtMost(1.2),
    },
    Gate {
        suite: Suite::Records,
        name: "records: records + months read on PostgreSQL, 100k activities vs 1k",
        numerator: "interleaved/records/read_postgres/100000",
        denominator: "interleaved/records/read_postgres/1000",
        bound: Bound::AtMost(1.2),
    },
    Gate {
        suite: Suite::Tracks,
        name: "tracks: CPU, 100k-point GPX parse + every figure, vs gpxpy",
        numerator: "interleaved/tracks/gpx_cpu/stride",
        denominator: "interleaved/tracks/gpx_cpu/gpxpy",
        // At least 20× less CPU time.
        bound: Bound::AtMost(0.05),
    },
    Gate {
        suite: Suite::Tracks,
        name: "tracks: CPU, 100k-record FIT read + every figure, vs fitdecode",
        numerator: "interleaved/tracks/fit_cpu/stride",
        denominator: "interleaved/tracks/fit_cpu/fitdecode",
        bound: Bound::AtMost(0.1),
    },
    Gate {
        suite: Suite::Tracks,
        name: "tracks: peak memory importing a 25 MiB GPX vs 6 x size + 50 MB",
        numerator: "interleaved/tracks/peak_bytes_import",
        denominator: "interleaved/tracks/peak_bytes_budget",
        bound: Bound::AtMost(1.0),
    },
    Gate {
        suite: Suite::Tracks,
        name: "tracks: 4,200-point GPX to imported, SQLite, vs gpxpy parse",
        numerator: "interleaved/tracks/import_latency_sqlite",
        denominator: "interleaved/tracks/gpxpy_4200",
        // gpxpy's parse alone is a fraction of FitTrackee's ~1 s accept; see docs/benchmarks.md.
        bound: Bound::AtMost(0.5),
    },
    Gate {
        suite: Suite::Tracks,
        name: "tracks: 4,200-point GPX to imported, PostgreSQL, vs gpxpy parse",
        numerator: "interleaved/tracks/import_latency_postgres",
        denominator: "interleaved/tracks/gpxpy_4200",
        bound: Bound::AtMost(0.5),
    },
    Gate {
        suite: Suite::Archives,
        name: "archives: 1,000 entries on SQLite, default workers vs one",
        numerator: "interleaved/archives/wall_default",
        denominator: "interleaved/archives/wall_one_worker",
        bound: Bound::AtMost(0.62),
    },
    Gate {
        suite: Suite::Archives,
        name: "archives: peak memory above idle, 1,000 entries vs 200 MB",
        numerator: "interleaved/archives/peak_bytes_1000",
        denominator: "interleaved/archives/peak_bytes_bound",
        bound: Bound::AtMost(1.0),
    },
    Gate {
        suite: Suite::Archives,
        name: "archives: peak memory, 1,000 vs 200 entries (larger / smaller)",
        numerator: "interleaved/archives/peak_bytes_larger",
        denominator: "interleaved/archives/peak_bytes_smaller",
        bound: Bound::AtMost(1.1),
    },
    Gate {
        suite: Suite::Archives,
        name: "archives: peak memory refusing a zip bomb vs 200 MB",
        numerator: "interleaved/archives/peak_bytes_bomb",
        denominator: "interleaved/archives/peak_bytes_bound",
        bound: Bound::AtMost(1.0),
    },
    Gate {
        suite: Suite::Jobs,
        name: "jobs sqlite: time per job, claim + fenced completion vs bare DELETE floor",
        numerator: "interleaved/jobs_sqlite/queue",
        denominator: "interleaved/jobs_sqlite/floor",
        // At most twice the floor's time per job: at least half its jobs/s.
        bound: Bound::AtMost(2.0),
    },
    Gate {
        suite: Suite::Jobs,
        name: "jobs postgres: time per job, claim + fenced completion vs bare DELETE floor",
        numerator: "interleaved/jobs_postgres/queue",
        denominator: "interleaved/jobs_postgres/floor",
        bound: Bound::AtMost(2.0),
    },
    Gate {
        suite: Suite::Jobs,
        name: "jobs postgres: enqueue-to-start p50 with NOTIFY vs the poll interval",
        numerator: "interleaved/jobs_postgres/notify_latency_p50",
        denominator: "interleaved/jobs_postgres/poll_interval",
        bound: Bound::AtMost(0.2),
    },
    Gate {
        suite: Suite::Feed,
        name: "feed postgres, 2000 friends, first page: concurrent fan-out speedup",
        numerator: "interleaved/feed_postgres/sequential/2000/first",
        denominator: "interleaved/feed_postgres/fan_out/2000/first",
        bound: Bound::AtLeast(1.5),
    },
    Gate {
        suite: Suite::Feed,
        name: "feed postgres, 2000 friends, deep page: concurrent fan-out speedup",
        numerator: "interleaved/feed_postgres/sequential/2000/deep",
        denominator: "interleaved/feed_postgres/fan_out/2000/deep",
        bound: Bound::AtLeast(1.5),
    },
    feed_product_gate!("sqlite", "10", "first", Bound::AtMost(1.2)),
    feed_product_gate!("sqlite", "200", "first", Bound::AtMost(1.2)),
    feed_product_gate!("sqlite", "2000", "first", Bound::AtMost(1.2)),
    feed_product_gate!("sqlite", "2000", "deep", Bound::AtMost(1.2)),
    feed_product_gate!("postgres", "10", "first", Bound::AtMost(1.2)),
    feed_product_gate!("postgres", "200", "first", Bound::AtMost(1.2)),
    feed_product_gate!("postgres", "200", "deep", Bound::AtMost(1.2)),
    feed_product_gate!("postgres", "2000", "first", Bound::AtMost(1.2)),
    feed_product_gate!("postgres", "2000", "deep", Bound::AtMost(1.2)),
    Gate {
        suite: Suite::Photos,
        name: "photos: CPU per image (display + thumb) relative to libvips",
        numerator: "interleaved/photos/cpu_per_image/stride",
        denominator: "interleaved/photos/cpu_per_image/libvips",
        bound: Bound::AtMost(0.7),
    },
    Gate {
        suite: Suite::Photos,
        name: "photos: ten photos through the upload path, wall relative to CPU time / cores",
        numerator: "interleaved/photos/upload_ten/wall",
        denominator: "interleaved/photos/upload_ten/cpu_per_core",
        bound: Bound::AtMost(1.5),
    },
    Gate {
        suite: Suite::Photos,
        name: "photos: peak memory of one image in flight relative to 100 MB",
        numerator: "interleaved/photos/peak_bytes_per_image",
        denominator: "interleaved/photos/peak_bytes_budget",
        bound: Bound::AtMost(1.0),
    },
    Gate {
        suite: Suite::Stats,
        name: "stats, seed's 4 scan queries at 100k on PostgreSQL: concurrent speedup",
        numerator: "interleaved/stats_scan_postgres/sequential/100000",
        denominator: "interleaved/stats_scan_postgres/concurrent/100000",
        bound: Bound::AtLeast(1.5),
    },
    // At 10k each scan takes about 2 ms, so the fixed share (a round trip, planning, the
    // client's own work on one of the two cores) caps the ideal below the 100k case's 2.0:
    // measured 1.46–1.65 over the ci runs of two stops. 1.3 still fails any run that serialises the four
    // queries (1.0); the 100k gate above keeps the 1.5 bound.
    Gate {
        suite: Suite::Stats,
        name: "stats, seed's 4 scan queries at 10k on PostgreSQL: concurrent speedup",
        numerator: "interleaved/stats_scan_postgres/sequential/10000",
        denominator: "interleaved/stats_scan_postgres/concurrent/10000",
        bound: Bound::AtLeast(1.3),
    },
    Gate {
        suite: Suite::Stats,
        name: "stats, production path on SQLite: 100k activities vs 1k",
        numerator: "interleaved/stats_production_sqlite/uncached/100000",
        denominator: "interleaved/stats_production_sqlite/uncached/1000",
        bound: Bound::AtMost(2.0),
    },
    Gate {
        suite: Suite::Stats,
        name: "stats, production path on PostgreSQL: 100k activities vs 1k",
        numerator: "interleaved/stats_production_postgres/uncached/100000",
        denominator: "interleaved/stats_production_postgres/uncached/1000",
        bound: Bound::AtMost(2.0),
    },
    Gate {
        suite: Suite::Toolkit,
        name: "try_map_concurrent limit 5: speedup over sequential 1 ms calls",
        numerator: "fan_out/sequential",
        denominator: "fan_out/try_map_concurrent/5",
        bound: Bound::AtLeast(4.0),
    },
    Gate {
        suite: Suite::Toolkit,
        name: "try_map_concurrent limit 50: speedup over sequential 1 ms calls",
        numerator: "fan_out/sequential",
        denominator: "fan_out/try_map_concurrent/50",
        bound: Bound::AtLeast(10.0),
    },
    Gate {
        suite: Suite::Toolkit,
        name: "try_map_concurrent limit 1: cost relative to sequential",
        numerator: "fan_out/try_map_concurrent/1",
        denominator: "fan_out/sequential",
        bound: Bound::AtMost(1.25),
    },
    Gate {
        suite: Suite::Toolkit,
        name: "worker pool: time per job relative to a bare mpsc loop",
        numerator: "dispatch/worker_pool",
        denominator: "dispatch/mpsc_loop",
        bound: Bound::AtMost(3.0),
    },
    Gate {
        suite: Suite::Pool,
        name: "resource pool: acquire/release relative to mutex + VecDeque",
        numerator: "pool_contention/pool",
        denominator: "pool_contention/mutex_vecdeque",
        bound: Bound::AtMost(8.0),
    },
];

/// `full`: the photo suite's whole test set instead of its short ci version.
pub fn bench(quick: bool, full: bool, suites: &[Suite]) -> Result<(), String> {
    let timing: &[&str] =
        if quick { &["--warm-up-time", "1", "--measurement-time", "3", "--noplot"] } else { &["--noplot"] };
    let postgres = crate::services::Postgres::ensure()?;
    let python = if suites.contains(&Suite::Tracks) { Some(crate::fixtures::ensure()?.1) } else { None };
    let cargo = || {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .current_dir(project_root())
            .env("STRIDE_TEST_DATABASE_URL", &postgres.url)
            .env("STRIDE_BENCH_FULL", if full { "1" } else { "0" })
            .envs(python.iter().map(|p| ("STRIDE_REFERENCE_PYTHON", p.as_os_str())));
        command
    };
    // Each crate's bench binaries in one cargo run first: they compile and link side by side
    // on both cores instead of one after another between the measurements. One run per crate,
    // never several crates together: that would unify their features, and the runs below (one
    // crate each) would build everything again.
    let mut crates: Vec<&str> = suites.iter().map(|suite| suite.target().0).collect();
    crates.sort_unstable();
    crates.dedup();
    for krate in crates {
        let mut build = cargo();
        build.args(["bench", "--no-run", "-p", krate]);
        for (_, bench) in suites.iter().map(|suite| suite.target()).filter(|(k, _)| *k == krate) {
            build.args(["--bench", bench]);
        }
        run(&mut build)?;
    }
    // Estimates written before this moment are a previous run's: never gate on them.
    let started = std::time::SystemTime::now();
    for suite in suites {
        let (krate, bench) = suite.target();
        run(cargo().args(["bench", "-p", krate, "--bench", bench, "--"]).args(timing))?;
    }
    let criterion = report(&crate::target_dir()?.join("criterion"), suites, started);
    // The HTTP comparison belongs to the statistics suite.
    let http = if suites.contains(&Suite::Stats) { http_gate() } else { Ok(()) };
    criterion.and(http)
}

/// Cached `GET /me/stats` against `GET /me` over real HTTP (see `load.rs`).
fn http_gate() -> Result<(), String> {
    const AT_LEAST: f64 = 0.70;
    let (me, stats) = crate::load::stats_vs_me()?;
    let ratio = stats / me;
    let ok = ratio >= AT_LEAST;
    println!(
        "{:<62} {:>12} {:>12} {:>8.2} {:>10}  {}",
        "HTTP: cached GET /me/stats req/s relative to GET /me",
        format!("{stats:.0}/s"),
        format!("{me:.0}/s"),
        ratio,
        format!(">= {AT_LEAST:.2}"),
        if ok { "ok" } else { "FAILED" }
    );
    if ok { Ok(()) } else { Err(format!("HTTP gate failed: /me/stats at {ratio:.2} of /me")) }
}

fn median_ns(criterion: &Path, id: &str, not_before: std::time::SystemTime) -> Result<f64, String> {
    let path = criterion.join(id).join("new/estimates.json");
    let written =
        std::fs::metadata(&path).and_then(|m| m.modified()).map_err(|e| format!("{}: {e}", path.display()))?;
    if written < not_before {
        return Err(format!("{} is older than this run: the benchmark did not write it", path.display()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
    json["median"]["point_estimate"].as_f64().ok_or_else(|| format!("no median in {}", path.display()))
}

fn report(criterion: &Path, suites: &[Suite], started: std::time::SystemTime) -> Result<(), String> {
    println!("\ncores: {}", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("{:<62} {:>12} {:>12} {:>8} {:>10}  result", "gate", "numerator", "denominator", "ratio", "bound");
    let mut failed = Vec::new();
    for gate in GATES.iter().filter(|gate| suites.contains(&gate.suite)) {
        let numerator = median_ns(criterion, gate.numerator, started)?;
        let denominator = median_ns(criterion, gate.denominator, started)?;
        let ratio = numerator / denominator;
        let (ok, bound) = match gate.bound {
            Bound::AtLeast(min) => (ratio >= min, format!(">= {min:.2}")),
            Bound::AtMost(max) => (ratio <= max, format!("<= {max:.2}")),
        };
        println!(
            "{:<62} {:>12} {:>12} {:>8.2} {:>10}  {}",
            gate.name,
            human(gate.numerator, numerator),
            human(gate.denominator, denominator),
            ratio,
            bound,
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(gate.name);
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("benchmark gates failed: {}", failed.join("; "))) }
}

/// A measurement for the table: bytes where the id says so, otherwise nanoseconds.
fn human(id: &str, value: f64) -> String {
    if id.contains("bytes") {
        return format!("{:.1} MB", value / 1e6);
    }
    let ns = value;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_estimate_older_than_the_run_is_refused() {
        let dir = std::env::temp_dir().join(format!("stride-bench-test-{}", std::process::id()));
        let file = dir.join("some/bench/new");
        std::fs::create_dir_all(&file).unwrap();
        std::fs::write(file.join("estimates.json"), r#"{"median":{"point_estimate":42.0}}"#).unwrap();
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        let after = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(super::median_ns(&dir, "some/bench", before), Ok(42.0));
        let stale = super::median_ns(&dir, "some/bench", after).unwrap_err();
        assert!(stale.contains("older than this run"), "{stale}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use super::*;

    #[test]
    fn every_suite_is_found_by_its_name_and_others_are_not() {
        for suite in Suite::ALL {
            assert_eq!(Suite::parse(suite.name()), Some(suite));
        }
        assert_eq!(Suite::parse("statistics"), None);
    }

    #[test]
    fn every_suite_has_a_gate() {
        for suite in Suite::ALL {
            assert!(GATES.iter().any(|gate| gate.suite == suite), "{suite:?} has no gate");
        }
    }
}
