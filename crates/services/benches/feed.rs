//! Feed benchmarks behind the gates of `cargo xtask bench feed` (see README, "Benchmarks").
//!
//! One population per backend: 2,000 people with `per_friend` activities each (20 in ci, 200
//! with `--full`), every visibility, and three readers whose friends are the first 10, 200 and
//! 2,000 of them. For each reader, the first page and a deep page (after 200 items) of 20,
//! fetched four ways in alternating rounds:
//! - `fan_out`: the product (chunks of 100 friends, concurrent chunk queries);
//! - `sequential`: the same chunk queries one after another on one connection;
//! - `single_in`: one `user_id IN (…) … ORDER BY … LIMIT 21` statement (the reference);
//! - `single_top_k`: one statement of per-friend top-K scans over every friend.
//!
//! Recorded as `interleaved/feed_<db>/<strategy>/<friends>/<first|deep>`, plus `fastest`, the
//! smallest of the four medians, and `product`, the median of the strategy the product runs on
//! that backend (`FeedService::PRODUCT`): the "within 1.2× of the fastest" gates divide the two.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use stride_concurrency::Deadline;
use stride_domain::{
    Activity, ActivityCursor, ActivityDraft, ActivityId, DisplayName, Distance, MovingTime, Sport, StartedAt, TimeZone,
    Title, User, UserId, Username, Visibility,
};
use stride_repository::testing::TestDatabase;
use stride_repository::{
    ActivityRepo, PgStore, RelationshipRepo, SqliteStore, Store, StoreConfig, UnitOfWork, UserRepo,
};
use stride_services::{FeedConfig, FeedService, FeedStrategy};

const PEOPLE: usize = 2_000;
const READERS: [usize; 3] = [10, 200, 2_000];
const LIMIT: u32 = 20;
const DEEP_AFTER: usize = 200;

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(120))
}

fn user(name: String) -> User {
    let username = Username::parse(&name).unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: Utc::now(),
    }
}

/// The population, and the readers (each befriending the first `n` people).
async fn seed<S: Store>(store: &S, per_friend: usize) -> Vec<(usize, UserId)> {
    let start = DateTime::parse_from_rfc3339("2024-01-01T06:00:00Z").unwrap().with_timezone(&Utc);
    let mut people = Vec::with_capacity(PEOPLE);
    let mut uow = store.write(deadline()).await.unwrap();
    for i in 0..PEOPLE {
        let person = user(format!("feed_person_{i}"));
        uow.insert_user(&person, "not a real hash").await.unwrap();
        for k in 0..per_friend {
            // Interleaved in time across people, as real feeds are; one in three is private.
            let at = start + TimeDelta::minutes((k * PEOPLE + i) as i64 * 7);
            let draft = ActivityDraft {
                sport: Sport::Run,
                title: Title::default(),
                started_at: StartedAt::from_parts(at.timestamp_micros(), 0).unwrap(),
                duration: MovingTime::from_seconds(1800).unwrap(),
                distance: Distance::from_metres(5000.0).unwrap(),
                visibility: Visibility::ALL[(i + k) % 3],
                start_latlng: None,
                description: None,
            };
            uow.insert_activity(&Activity::create(ActivityId::new(), person.id, draft, at)).await.unwrap();
        }
        people.push(person.id);
    }
    let mut readers = Vec::new();
    for n in READERS {
        let reader = user(format!("feed_reader_{n}"));
        uow.insert_user(&reader, "not a real hash").await.unwrap();
        for friend in &people[..n] {
            uow.insert_friendship(reader.id, *friend, Utc::now()).await.unwrap();
        }
        readers.push((n, reader.id));
    }
    uow.commit().await.unwrap();
    readers
}

const STRATEGIES: [(FeedStrategy, &str); 4] = [
    (FeedStrategy::FanOut, "fan_out"),
    (FeedStrategy::Sequential, "sequential"),
    (FeedStrategy::SingleQuery, "single_in"),
    (FeedStrategy::SingleTopK, "single_top_k"),
];

fn backend<S: Store>(
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: S,
    pool_size: u32,
    per_friend: usize,
    settle: impl Fn(),
) {
    let started = std::time::Instant::now();
    let readers = rt.block_on(seed(&store, per_friend));
    settle();
    println!(
        "feed_{name}: seeded {PEOPLE} people x {per_friend} activities (and settled) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The server's settings of the same names override the defaults, to explore others.
    let setting = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
    let defaults = FeedConfig::for_pool_size(pool_size);
    let config = FeedConfig {
        chunk_size: setting("STRIDE_FEED_CHUNK_SIZE").unwrap_or(defaults.chunk_size),
        concurrency: setting("STRIDE_FEED_CONCURRENCY").unwrap_or(defaults.concurrency),
        ..defaults
    };
    let feed = FeedService::new(store.clone(), config);
    println!("feed_{name}: {:?}", feed.config());
    for (friends, reader) in readers {
        // The deep page's cursor: where the product's walk stands after DEEP_AFTER items.
        let deep: Option<ActivityCursor> = rt.block_on(async {
            let mut after = None;
            for _ in 0..DEEP_AFTER / LIMIT as usize {
                let page = feed.page_with(FeedStrategy::FanOut, deadline(), reader, 0, after, LIMIT).await.unwrap();
                after = page.next_cursor;
            }
            after
        });
        for (page, after) in [("first", None), ("deep", deep)] {
            // Every strategy answers the same page: measured work is equal work.
            let reference =
                rt.block_on(feed.page_with(FeedStrategy::SingleQuery, deadline(), reader, 0, after, LIMIT)).unwrap();
            assert_eq!(reference.items.len(), LIMIT as usize, "{friends} friends, {page} page");
            for (strategy, _) in STRATEGIES {
                let got = rt.block_on(feed.page_with(strategy, deadline(), reader, 0, after, LIMIT)).unwrap();
                assert_eq!(got, reference, "{strategy:?} differs at {friends} friends, {page} page");
            }
            let sides: Vec<common::Side<'_>> = STRATEGIES
                .iter()
                .map(|&(strategy, _)| {
                    let feed = &feed;
                    Box::new(move || {
                        Box::pin(async move {
                            let page = feed.page_with(strategy, deadline(), reader, 0, after, LIMIT).await.unwrap();
                            std::hint::black_box(page);
                        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
                    }) as common::Side<'_>
                })
                .collect();
            // The 2,000-friend pages carry the fan-out gates, whose ratio once read 1.51-1.58
            // against a bound of 1.5 from round to round: more and longer rounds there.
            let (calls, rounds) = match (name, friends >= 2_000) {
                ("postgres", true) => (20, 15),
                (_, true) => (10, common::ROUNDS),
                _ => (40, common::ROUNDS),
            };
            let medians = common::interleaved_rounds(rt, &sides, calls, rounds);
            for ((_, label), median) in STRATEGIES.iter().zip(&medians) {
                record(&format!("feed_{name}/{label}/{friends}/{page}"), *median);
            }
            let fastest = medians.iter().copied().fold(f64::INFINITY, f64::min);
            record(&format!("feed_{name}/fastest/{friends}/{page}"), fastest);
            // The product's strategy on this backend, from the same rounds.
            let product = STRATEGIES.iter().position(|&(s, _)| s == FeedService::<S>::PRODUCT).unwrap();
            record(&format!("feed_{name}/product/{friends}/{page}"), medians[product]);
        }
    }
}

fn record(id: &str, median_ns: f64) {
    common::record(id, median_ns);
    println!("interleaved {id}: {:.1} µs (median of alternating rounds)", median_ns / 1000.0);
}

fn main() {
    let full = std::env::var("STRIDE_BENCH_FULL").is_ok_and(|v| v == "1");
    let per_friend = if full { 200 } else { 20 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Seeding is one long unit of work: lift the per-unit cap for the bench.
    let generous = |db: &TestDatabase| StoreConfig { statement_timeout: Duration::from_secs(600), ..db.config() };
    // `STRIDE_BENCH_BACKEND=postgres` (or `sqlite`) measures one backend only.
    let only = std::env::var("STRIDE_BENCH_BACKEND").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    if wanted("sqlite") {
        let sqlite = TestDatabase::sqlite();
        let config = generous(&sqlite);
        let store = rt.block_on(SqliteStore::connect(&config)).unwrap();
        rt.block_on(store.migrate()).unwrap();
        backend(&rt, "sqlite", store, config.max_connections, per_friend, || {});
    }
    if !wanted("postgres") {
        return;
    }
    let postgres = rt.block_on(TestDatabase::postgres());
    let config = generous(&postgres);
    let store = rt.block_on(PgStore::connect(&config)).unwrap();
    rt.block_on(store.migrate()).unwrap();
    let settle = || rt.block_on(common::settle_postgres(postgres.url(), &["users", "friendships", "activities"]));
    backend(&rt, "postgres", store.clone(), config.max_connections, per_friend, settle);
    rt.block_on(store.close());
}
