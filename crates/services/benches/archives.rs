//! Archives, through `ImportService::create_archive` and the job runner, on SQLite and the disk
//! store, as an operator's import of a Strava export runs:
//!
//! - a 1,000-entry archive of mixed gzipped GPX, FIT and TCX (as Strava stores them): the
//!   wall time with the pipeline's default concurrency (`ImportConfig::default().workers`,
//!   one per core plus one) at most 0.62 × the wall time with one worker, same archive, same
//!   run;
//! - the peak resident memory above idle during that import at most 200 MB, and a 200-entry
//!   and the 1,000-entry archive's peaks within 10 % of each other;
//! - a zip bomb (an entry inflating past the 100 MiB cap, a 42.zip-style nest of archives)
//!   refused with its items' errors while memory stays within the same 200 MB.
//!
//! Memory is the process's `VmHWM` (reset through `/proc/self/clear_refs`) above its `VmRSS`
//! before the import. That part runs with jemalloc returning freed pages at once
//! (`dirty_decay_ms:0`): otherwise what the previous import freed and jemalloc kept would count
//! as "idle", and each peak would measure only what that run needed beyond it. The timing part
//! runs with the allocator as the server has it.

mod common;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stride_repository::testing::{TestDatabase, deadline};
use stride_services::jobs::{JobRunner, RunnerConfig};
use stride_services::{ImportConfig, LocalBlobStore, Registration, Settings, Stride, SystemClock};

use stride_tracks::testing::{FitMessage, ZipEntry, fit_file, gpx_file, gzip, synthetic_run, tcx_file, zip_file};

const START: i64 = 1_700_000_000;
/// Points per activity: an hour at one point a second (a GPX of 0.75 MB before gzip) for the
/// timing; two hours for the memory part, whose peaks should measure the items in flight more
/// than the allocator's bookkeeping. One length per archive, so that what is in flight
/// together is alike from one moment to the next and a peak measures the pipeline, not which
/// long rides happened to meet.
const POINTS: usize = 3_600;
const POINTS_FOR_MEMORY: usize = 7_200;
const MEMORY_BOUND: f64 = 200e6;

fn kib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read status");
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

/// An archive of `entries` different activities of `points` points, a third each gzipped
/// GPX, FIT and TCX.
fn archive(entries: usize, points: usize) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = (0..entries)
        .map(|i| {
            let origin = (46.0 + (i % 50) as f64 * 0.01, 14.5);
            let points = synthetic_run(points, origin, START + i as i64 * 86_400);
            match i % 3 {
                0 => (format!("activities/{i}.gpx.gz"), gzip(gpx_file(&points, None, Some("running")).as_bytes())),
                1 => {
                    let records: Vec<FitMessage> = points.into_iter().map(FitMessage::Record).collect();
                    (format!("activities/{i}.fit.gz"), gzip(&fit_file(&records)))
                }
                _ => (format!("activities/{i}.tcx.gz"), gzip(tcx_file(&points, "Running").as_bytes())),
            }
        })
        .collect();
    let entries: Vec<ZipEntry<'_>> = files.iter().map(|(name, bytes)| ZipEntry::File(name, bytes)).collect();
    zip_file(&entries)
}

/// A bomb: one entry of 200 MiB of zeros (past the 100 MiB cap; 200 KB deflated), a nest of
/// zips in zips named as one, and the same nest named as a track.
fn bomb() -> Vec<u8> {
    let zeros = vec![0u8; 200 << 20];
    let inner = zip_file(&[ZipEntry::File("a.gpx", b"<gpx/>")]);
    let nested = (0..4).fold(inner, |inner, level| {
        let name = format!("level{level}.zip");
        zip_file(&[ZipEntry::File(&name, &inner), ZipEntry::File("b.zip", &inner)])
    });
    zip_file(&[
        ZipEntry::File("activities/bomb.gpx", &zeros),
        ZipEntry::File("activities/nested.zip", &nested),
        ZipEntry::File("activities/42.gpx", &nested),
    ])
}

/// One Stride on a SQLite database and a blob folder, with the import kind's runner going.
struct Harness {
    runtime: tokio::runtime::Runtime,
    stride: Stride<stride_repository::SqliteStore>,
    stop: tokio_util::sync::CancellationToken,
    users: std::cell::Cell<u32>,
    _db: TestDatabase,
    _blobs: tempfile::TempDir,
}

impl Harness {
    fn new(dir: &Path, workers: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let db = TestDatabase::sqlite();
        let blobs = tempfile::tempdir_in(dir).unwrap();
        let (stride, stop) = runtime.block_on(async {
            let store = db.sqlite_store().await;
            let disk = Arc::new(LocalBlobStore::open(blobs.path()).await.expect("open the blob folder"));
            let settings = Settings {
                imports: ImportConfig { workers, spool_dir: dir.to_owned(), ..ImportConfig::default() },
                ..Settings::default()
            };
            let stride = Stride::new(store.clone(), Arc::new(SystemClock), disk, settings).expect("services");
            let stop = tokio_util::sync::CancellationToken::new();
            let kinds = vec![stride.imports.registered()];
            tokio::spawn(
                JobRunner::new(store, Arc::new(SystemClock), RunnerConfig::default(), kinds).run(stop.clone()),
            );
            (stride, stop)
        });
        Self { runtime, stride, stop, users: std::cell::Cell::new(0), _db: db, _blobs: blobs }
    }

    /// Imports the archive at `path` for a new user: (wall time, peak bytes above idle, the
    /// import as it ended).
    fn import(&self, path: &Path) -> (Duration, f64, stride_domain::Import) {
        self.users.set(self.users.get() + 1);
        let stride = &self.stride;
        self.runtime.block_on(async {
            let registration = Registration {
                username: stride_domain::Username::parse(&format!("bench{}", self.users.get())).unwrap(),
                password: stride_domain::Password::parse("correct horse battery").unwrap(),
                display_name: None,
                timezone: None,
            };
            let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user.id;
            std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
            let idle = kib("VmRSS:");
            let started = Instant::now();
            let created =
                stride.imports.create_archive(deadline(), user, path, Default::default(), None).await.unwrap();
            let id = created.import().id;
            let import = loop {
                let import = stride.imports.get(deadline(), user, id).await.unwrap();
                if !import.state.is_active() {
                    break import;
                }
                assert!(started.elapsed() < Duration::from_secs(600), "{import:?}");
                // Often enough to end within 1 % of a run; a read costs a database round trip,
                // and at a few milliseconds apart those would take CPU from the import.
                tokio::time::sleep(Duration::from_millis(25)).await;
            };
            (started.elapsed(), (kib("VmHWM:") - idle) * 1024.0, import)
        })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// jemalloc reads its options at start, so the memory part runs in a process of its own.
const MALLOC_CONF: (&str, &str) = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0");
/// Which part a child process runs.
const PART: &str = "STRIDE_ARCHIVES_BENCH_PART";

fn main() {
    let Some(part) = std::env::var_os(PART) else {
        // Timing with the allocator as the server runs it; memory with freed pages returned.
        for (part, conf) in [("timing", None), ("memory", Some(MALLOC_CONF))] {
            let mut child = std::process::Command::new(std::env::current_exe().expect("the bench's own path"));
            child.args(std::env::args_os().skip(1)).env(PART, part).envs(conf);
            let status = child.status().expect("run a part of the bench");
            assert!(status.success(), "the {part} part failed");
        }
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let workers = ImportConfig::default().workers;
    if part == "timing" {
        let big = dir.path().join("1000.zip");
        std::fs::write(&big, archive(1000, POINTS)).unwrap();
        timing(dir.path(), &big, workers);
    } else {
        memory(dir.path(), workers);
    }
}

/// The same archive into a fresh database each, with one worker and with the default, three
/// rounds alternating; the medians (a round's wall time moves with the disk's fsyncs).
fn timing(dir: &Path, big: &Path, default_workers: usize) {
    let (mut ones, mut defaults) = (Vec::new(), Vec::new());
    // Kept until the end: deleting a run's thousands of blobs would make the next run's file
    // creations slower (ext4 scans recently freed inodes), a cost no import of a real server
    // pays for the one before it.
    let mut finished = Vec::new();
    for _ in 0..3 {
        for (workers, walls) in [(1, &mut ones), (default_workers, &mut defaults)] {
            let harness = Harness::new(dir, workers);
            let (wall, _, done) = harness.import(big);
            assert_eq!((done.imported, done.failed), (1000, 0), "{done:?}");
            walls.push(wall);
            finished.push(harness);
        }
    }
    ones.sort();
    defaults.sort();
    let (one, default) = (ones[1], defaults[1]);
    println!(
        "archives: 1,000 entries on SQLite: {:.2} s with {default_workers} workers (the default), {:.2} s with one ({:.2}×)",
        default.as_secs_f64(),
        one.as_secs_f64(),
        default.as_secs_f64() / one.as_secs_f64()
    );
    common::record("archives/wall_default", default.as_secs_f64() * 1e9);
    common::record("archives/wall_one_worker", one.as_secs_f64() * 1e9);
}

/// Peaks: the 1,000-entry archive into a fresh database; then the 200- and the 1,000-entry
/// archives, three times each, into the database the first ones filled (its caches as full as
/// they get), so that what differs between those two is the archive alone; then the bomb.
fn memory(dir: &Path, workers: usize) {
    let (big, small, bombs) = (&dir.join("1000.zip"), dir.join("200.zip"), dir.join("bomb.zip"));
    std::fs::write(big, archive(1000, POINTS_FOR_MEMORY)).unwrap();
    std::fs::write(&small, archive(200, POINTS_FOR_MEMORY)).unwrap();
    std::fs::write(&bombs, bomb()).unwrap();
    let product = Harness::new(dir, workers);
    let (_, peak_fresh, _) = product.import(big);
    // Once more, so the database's page caches are as full as they get before the comparison.
    product.import(big);
    // Three of each, interleaved; the median of each size's three peaks (a single run's peak
    // moves by half a megabyte with what happens to be in flight together).
    let (mut smalls, mut bigs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (_, small_peak, done_small) = product.import(&small);
        assert_eq!(done_small.imported, 200);
        let (_, big_peak, done_big) = product.import(big);
        assert_eq!(done_big.imported, 1000);
        smalls.push(small_peak);
        bigs.push(big_peak);
        println!(
            "archives: peaks above idle, 200 entries {:.2} MB, 1,000 entries {:.2} MB",
            small_peak / 1e6,
            big_peak / 1e6
        );
    }
    smalls.sort_by(f64::total_cmp);
    bigs.sort_by(f64::total_cmp);
    let (peak_small, peak_big) = (smalls[1], bigs[1]);
    let (_, peak_bomb, done_bomb) = product.import(&bombs);
    assert_eq!((done_bomb.imported, done_bomb.failed), (0, 3), "the bomb and both nests fail: {done_bomb:?}");
    println!(
        "archives: peak above idle: 1,000 entries {:.1} MB into a fresh database, {:.1} MB into one with history; \
         200 entries {:.1} MB; bomb {:.1} MB (bound {:.0} MB)",
        peak_fresh / 1e6,
        peak_big / 1e6,
        peak_small / 1e6,
        peak_bomb / 1e6,
        MEMORY_BOUND / 1e6
    );
    common::record("archives/peak_bytes_1000", peak_fresh.max(peak_big));
    common::record("archives/peak_bytes_bomb", peak_bomb);
    common::record("archives/peak_bytes_bound", MEMORY_BOUND);
    common::record("archives/peak_bytes_larger", peak_big.max(peak_small));
    common::record("archives/peak_bytes_smaller", peak_big.min(peak_small));
}
