//! Best efforts and records, behind the gates of `cargo xtask bench records`:
//!
//! - the best efforts of a 100,000-point track for all seven run distances against one pass
//!   that computes the cumulative (geodesic) distance of the same points, the floor any
//!   distance-based figure pays; and the sweep's answers equal the plain reference's (binary
//!   search for each breakpoint's other end), asserted;
//! - records and monthly totals read for a user with 100,000 activities against one with
//!   1,000, on SQLite and PostgreSQL (like the statistics gate): one index range per distance
//!   and one per period list, so flat with history.
//!
//! Medians of alternating rounds (`common::interleaved_all`), written for the gates.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use stride_concurrency::Deadline;
use stride_domain::{
    Activity, ActivityDraft, ActivityId, BestEffort, DisplayName, Distance, MovingTime, Period, PeriodTotals, Sport,
    StartedAt, TimeZone, Title, User, UserId, Username, Visibility,
};
use stride_repository::testing::TestDatabase;
use stride_repository::{ActivityRepo, PgStore, RecordsRepo, SqliteStore, Store, StoreConfig, UnitOfWork, UserRepo};
use stride_services::{Caller, LocalBlobStore, Settings, Stride, SystemClock};
use stride_tracks::efforts::{Profile, RUN_DISTANCES_M, best_effort_by_search};
use stride_tracks::metrics::cumulative_distance;
use stride_tracks::testing::synthetic_run;

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(600))
}

fn efforts_cpu(rt: &tokio::runtime::Runtime) {
    let points = synthetic_run(100_000, (46.0, 14.5), 1_700_000_000);
    let cumulative = cumulative_distance(&points);
    let profile = Profile::new(&points, &cumulative);
    for length in RUN_DISTANCES_M {
        let (swept, searched) = (profile.best_effort(length), best_effort_by_search(&profile, length));
        let (a, b) = (swept.expect("a 100k-point track covers a marathon"), searched.unwrap());
        assert!((a.elapsed_s - b.elapsed_s).abs() < 1e-6 && (a.start_offset_s - b.start_offset_s).abs() < 1e-6);
    }
    let sides: [common::Side<'_>; 2] = [
        Box::new(|| {
            Box::pin(async {
                std::hint::black_box(cumulative_distance(std::hint::black_box(&points)));
            })
        }),
        Box::new(|| {
            Box::pin(async {
                let profile = Profile::new(std::hint::black_box(&points), &cumulative);
                for length in RUN_DISTANCES_M {
                    std::hint::black_box(profile.best_effort(length));
                }
            })
        }),
    ];
    let medians = common::interleaved_all(rt, &sides, 5);
    println!(
        "records: 100k points, cumulative distance {:.2} ms, seven run efforts {:.2} ms ({:.2}×)",
        medians[0] / 1e6,
        medians[1] / 1e6,
        medians[1] / medians[0]
    );
    common::record("records/cumulative_distance_100k", medians[0]);
    common::record("records/efforts_100k", medians[1]);
}

/// A user with `n` runs over 30 years, each with three efforts, and their months.
async fn seed<S: Store>(store: &S, n: u64) -> User {
    let username = Username::parse(&format!("records_{n}")).unwrap();
    let user = User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: Utc::now(),
    };
    let first = DateTime::parse_from_rfc3339("1996-01-01T07:00:00Z").unwrap().with_timezone(&Utc);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_user(&user, "not a real hash").await.unwrap();
    let mut months = std::collections::BTreeMap::new();
    for i in 0..n {
        let started = first + TimeDelta::minutes((i * 157_680 / n.max(1)) as i64 * 100);
        let draft = ActivityDraft {
            sport: Sport::Run,
            title: Title::default(),
            started_at: StartedAt::new(started.fixed_offset()),
            duration: MovingTime::from_seconds(1800 + (i % 600) as i64).unwrap(),
            distance: Distance::from_metres(2000.0 + (i % 1000) as f64).unwrap(),
            visibility: Visibility::ALL[(i % 3) as usize],
            start_latlng: None,
            description: None,
        };
        let activity = Activity::create(ActivityId::new(), user.id, draft, Utc::now());
        uow.insert_activity(&activity).await.unwrap();
        let pace = 3000 + (i * 7919 % 1000) as i64;
        let efforts: Vec<BestEffort> = [400_000, 1_000_000, 1_609_344]
            .into_iter()
            .map(|mm| BestEffort { distance_mm: mm, elapsed_ds: pace * mm / 1_000_000, start_ds: 0, end_ds: 0 })
            .map(|e| BestEffort { end_ds: e.elapsed_ds, ..e })
            .collect();
        uow.replace_efforts(activity.id, &efforts, 1).await.unwrap();
        let month = Period::Month.start_of(activity.local_date().day_number());
        let totals: &mut PeriodTotals = months.entry(month).or_default();
        *totals += PeriodTotals {
            activities: 1,
            distance_mm: (activity.distance.metres() * 1000.0) as i64,
            duration_s: 1800,
            gain_mm: 0,
        };
    }
    for (month, totals) in months {
        uow.adjust_month(user.id, month, Sport::Run, totals).await.unwrap();
    }
    uow.commit().await.unwrap();
    user
}

fn backend<S: Store>(rt: &tokio::runtime::Runtime, name: &str, store: S, settle: impl Fn()) {
    let blobs = tempfile::tempdir().unwrap();
    let disk = Arc::new(rt.block_on(LocalBlobStore::open(blobs.path())).unwrap());
    let stride = Stride::new(store.clone(), Arc::new(SystemClock), disk, Settings::default()).unwrap();
    let small = rt.block_on(seed(&store, 1_000));
    let large = rt.block_on(seed(&store, 100_000));
    settle();
    let records = &stride.records;
    let caller = |user: &User| Caller { user: user.clone(), stats_version: 0, social_version: 0 };
    let (small_caller, large_caller) = (caller(&small), caller(&large));
    let read = |user: &User, caller: &Caller| {
        let (id, records, caller) = (user.id, records.clone(), caller.clone());
        async move {
            let best = records.records(deadline(), id, id, Sport::Run).await.unwrap();
            assert_eq!(best.items.len(), 3);
            let months = records.periods(deadline(), &caller, Period::Month, 12, None).await.unwrap();
            std::hint::black_box((best, months));
        }
    };
    let sides: [common::Side<'_>; 2] =
        [Box::new(|| Box::pin(read(&small, &small_caller))), Box::new(|| Box::pin(read(&large, &large_caller)))];
    let medians = common::interleaved_all(rt, &sides, 100);
    println!(
        "records: {name}, records + 12 months read, 1k activities {:.1} µs, 100k {:.1} µs ({:.2}×)",
        medians[0] / 1e3,
        medians[1] / 1e3,
        medians[1] / medians[0]
    );
    common::record(&format!("records/read_{name}/1000"), medians[0]);
    common::record(&format!("records/read_{name}/100000"), medians[1]);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    efforts_cpu(&rt);
    let generous = |db: &TestDatabase| StoreConfig { statement_timeout: Duration::from_secs(600), ..db.config() };
    let sqlite = TestDatabase::sqlite();
    let store = rt.block_on(SqliteStore::connect(&generous(&sqlite))).unwrap();
    rt.block_on(store.migrate()).unwrap();
    backend(&rt, "sqlite", store, || {});
    let postgres = rt.block_on(TestDatabase::postgres());
    let store = rt.block_on(PgStore::connect(&generous(&postgres))).unwrap();
    rt.block_on(store.migrate()).unwrap();
    backend(&rt, "postgres", store.clone(), || {
        rt.block_on(common::settle_postgres(postgres.url(), &["activities", "best_efforts", "stats_months"]))
    });
    rt.block_on(store.close());
}
