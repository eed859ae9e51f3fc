//! Tracks against the implementations people run today, on the same files in the same run:
//!
//! - CPU to parse a 100,000-point GPX and compute every figure (distance, moving time, climb,
//!   heart rate, splits, the route) against gpxpy doing what FitTrackee does on upload (parse,
//!   `length_2d`, `get_moving_data`, `get_uphill_downhill`): at most 1/20;
//! - CPU to read a 100,000-record FIT and compute the same, against fitdecode only decoding
//!   it: at most 1/10;
//! - peak memory an import of a 25 MiB GPX adds, at most 6 × the file + 50 MB;
//! - a 4,200-point GPX from `ImportService::create` to its item `imported`, through the
//!   job runner, on SQLite and on PostgreSQL, against gpxpy's parse of that file alone
//!   (FitTrackee's accept of it took about 1 s here, many times gpxpy's part).
//!
//! Python's side is measured inside Python (`time.process_time` around the work, not the
//! interpreter's start); ours on this thread (`/proc/thread-self/stat`, several runs). The
//! reference virtualenv is `STRIDE_REFERENCE_PYTHON` (`cargo xtask fixtures` makes it).

mod common;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stride_tracks::testing::{FitMessage, fit_file, gpx_file, synthetic_run};
use stride_tracks::{Streams, Summary, route};

const START: i64 = 1_780_349_400;

fn python() -> String {
    std::env::var("STRIDE_REFERENCE_PYTHON")
        .expect("STRIDE_REFERENCE_PYTHON: the reference virtualenv's python (cargo xtask fixtures prints it)")
}

/// CPU seconds Python spends on `work` (a statement over `path`), measured inside Python.
fn python_cpu(script: &str, path: &Path) -> f64 {
    let output = Command::new(python()).args(["-c", script]).arg(path).output().expect("run the reference python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("seconds")
}

const GPXPY: &str = "import sys, time, gpxpy
t = time.process_time()
g = gpxpy.parse(open(sys.argv[1]))
g.length_2d(); g.get_moving_data(); g.get_uphill_downhill()
print(time.process_time() - t)";

const FITDECODE: &str = "import sys, time, fitdecode
t = time.process_time()
n = 0
with fitdecode.FitReader(sys.argv[1]) as fit:
    for frame in fit:
        if frame.frame_type == fitdecode.FIT_FRAME_DATA:
            n += len(frame.fields)
print(time.process_time() - t)";

fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("read /proc stat");
    let fields: Vec<f64> =
        stat.rsplit_once(')').unwrap().1.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    let ticks = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    let ticks: f64 = String::from_utf8_lossy(&ticks.stdout).trim().parse().unwrap();
    (fields[11] + fields[12]) / ticks
}

/// CPU seconds per run of reading `bytes` and computing every figure, over `runs` runs.
fn ours_cpu(bytes: &[u8], runs: u32) -> f64 {
    let before = thread_cpu_seconds();
    for _ in 0..runs {
        let track = stride_tracks::read(bytes).expect("the bench file reads");
        let streams = Streams::from_points(track.points);
        let summary = Summary::compute_with(&streams.points, &streams.distance).expect("a track");
        std::hint::black_box((summary, route(&streams.positions())));
    }
    (thread_cpu_seconds() - before) / f64::from(runs)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    peak_memory_of_an_import(dir.path());

    let gpx = gpx_file(&synthetic_run(100_000, (46.05, 14.5), START), Some("bench"), Some("running")).into_bytes();
    let gpx_path = dir.path().join("100k.gpx");
    std::fs::write(&gpx_path, &gpx).unwrap();
    let fit =
        fit_file(&synthetic_run(100_000, (46.05, 14.5), START).into_iter().map(FitMessage::Record).collect::<Vec<_>>());
    let fit_path = dir.path().join("100k.fit");
    std::fs::write(&fit_path, &fit).unwrap();
    let (mut ours_gpx, mut gpxpy, mut ours_fit, mut fitdecode) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        ours_gpx.push(ours_cpu(&gpx, 5));
        gpxpy.push(python_cpu(GPXPY, &gpx_path));
        ours_fit.push(ours_cpu(&fit, 5));
        fitdecode.push(python_cpu(FITDECODE, &fit_path));
    }
    let (ours_gpx, gpxpy, ours_fit, fitdecode) = (median(ours_gpx), median(gpxpy), median(ours_fit), median(fitdecode));
    println!(
        "tracks: 100k-point GPX, CPU: stride {:.0} ms, gpxpy {:.0} ms ({:.1}× less)",
        ours_gpx * 1e3,
        gpxpy * 1e3,
        gpxpy / ours_gpx
    );
    println!(
        "tracks: 100k-record FIT, CPU: stride {:.0} ms, fitdecode {:.0} ms ({:.1}× less)",
        ours_fit * 1e3,
        fitdecode * 1e3,
        fitdecode / ours_fit
    );
    common::record("tracks/gpx_cpu/stride", ours_gpx * 1e9);
    common::record("tracks/gpx_cpu/gpxpy", gpxpy * 1e9);
    common::record("tracks/fit_cpu/stride", ours_fit * 1e9);
    common::record("tracks/fit_cpu/fitdecode", fitdecode * 1e9);

    import_latency(dir.path());
}

/// One Stride over `store`, with the import kind's runner going.
async fn running<S: stride_services::Store>(
    store: S,
    blobs: &Path,
) -> (stride_services::Stride<S>, tokio_util::sync::CancellationToken, stride_domain::UserId) {
    use stride_repository::testing::deadline;
    use stride_services::jobs::{JobRunner, RunnerConfig};
    use stride_services::{LocalBlobStore, Registration, Stride, SystemClock};
    let disk = Arc::new(LocalBlobStore::open(blobs).await.expect("open the blob folder"));
    let stride = Stride::new(store.clone(), Arc::new(SystemClock), disk, Default::default()).expect("services");
    let stop = tokio_util::sync::CancellationToken::new();
    let runner =
        JobRunner::new(store, Arc::new(SystemClock), RunnerConfig::default(), vec![stride.imports.registered()]);
    tokio::spawn(runner.run(stop.clone()));
    let registration = Registration {
        username: stride_domain::Username::parse("bench").unwrap(),
        password: stride_domain::Password::parse("correct horse battery").unwrap(),
        display_name: None,
        timezone: None,
    };
    let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user.id;
    (stride, stop, user)
}

/// Imports `bytes` and returns the wall time until its one item is imported.
async fn import_one<S: stride_services::Store>(
    stride: &stride_services::Stride<S>,
    user: stride_domain::UserId,
    bytes: Vec<u8>,
) -> Duration {
    use stride_repository::testing::deadline;
    let file = stride_services::ImportFile { name: "bench.gpx".into(), bytes: bytes.into() };
    let started = Instant::now();
    let created = stride.imports.create(deadline(), user, vec![file], Default::default(), None).await.expect("import");
    let id = created.import().id;
    loop {
        let import = stride.imports.get(deadline(), user, id).await.unwrap();
        if import.imported == 1 {
            return started.elapsed();
        }
        assert!(import.state.is_active() && started.elapsed() < Duration::from_secs(30), "{import:?}");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn import_latency(dir: &Path) {
    use stride_repository::testing::TestDatabase;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let file =
        |n: i64| gpx_file(&synthetic_run(4200, (46.05, 14.5), START + n * 86_400), None, Some("running")).into_bytes();
    let path = dir.join("4200.gpx");
    std::fs::write(&path, file(0)).unwrap();
    let gpxpy = median((0..5).map(|_| python_cpu(GPXPY, &path)).collect());
    common::record("tracks/gpxpy_4200", gpxpy * 1e9);
    for backend in ["sqlite", "postgres"] {
        let latencies: Vec<f64> = runtime.block_on(async {
            let blobs = tempfile::tempdir().unwrap();
            let mut latencies = Vec::new();
            macro_rules! measure {
                ($store:expr) => {{
                    let (stride, stop, user) = running($store, blobs.path()).await;
                    for n in 0..9 {
                        latencies.push(import_one(&stride, user, file(n + 1)).await.as_secs_f64());
                    }
                    stop.cancel();
                }};
            }
            if backend == "sqlite" {
                let db = TestDatabase::sqlite();
                measure!(db.sqlite_store().await);
            } else {
                let db = TestDatabase::create(stride_repository::Backend::Postgres).await;
                measure!(db.store::<stride_repository::PgStore>().await);
            }
            latencies
        });
        let p50 = median(latencies);
        println!(
            "tracks: 4,200-point GPX, create to imported on {backend}: p50 {:.1} ms (gpxpy's parse alone: {:.0} ms)",
            p50 * 1e3,
            gpxpy * 1e3
        );
        common::record(&format!("tracks/import_latency_{backend}"), p50 * 1e9);
    }
}

/// The peak resident memory an import of a 25 MiB GPX adds, from its bytes to its activity.
fn peak_memory_of_an_import(dir: &Path) {
    use stride_repository::testing::TestDatabase;
    let kib = |key: &str| -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = TestDatabase::sqlite();
        let (stride, stop, user) = running(db.sqlite_store().await, dir).await;
        // As many points as fit in 25 MiB (what one part may be), at the bytes a point takes.
        let per_point = gpx_file(&synthetic_run(10_000, (46.05, 14.5), START), None, None).len() as f64 / 10_000.0;
        let points = (25.0 * 1024.0 * 1024.0 / per_point) as usize - 200;
        // From before the file exists: the upload's bytes are part of what an import holds.
        std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
        let before = kib("VmRSS:");
        let bytes = gpx_file(&synthetic_run(points, (46.05, 14.5), START), None, None).into_bytes();
        let size = bytes.len() as f64;
        assert!(size <= 25.0 * 1024.0 * 1024.0, "{size}");
        import_one(&stride, user, bytes).await;
        let peak = (kib("VmHWM:") - before) * 1024.0;
        stop.cancel();
        println!(
            "tracks: importing a {:.1} MB GPX added {:.0} MB at peak (budget {:.0} MB)",
            size / 1e6,
            peak / 1e6,
            (6.0 * size + 50e6) / 1e6
        );
        common::record("tracks/peak_bytes_import", peak);
        common::record("tracks/peak_bytes_budget", 6.0 * size + 50e6);
    });
}
