//! One contract, two backends: every test here is a generic function over `Store`, and the
//! `contract!` macro runs each against a fresh SQLite file and a fresh PostgreSQL database.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use stride_concurrency::Deadline;
use stride_domain::{
    Activity, ActivityCursor, ActivityDraft, ActivityId, DisplayName, Distance, MovingTime as Moving, Sport, StartedAt,
    StatsScope, StreakLengths, TimeZone, Title, User, UserId, Username, Visibility, streaks_from_days,
};
use stride_repository::testing::{RawSql, deadline};
use stride_repository::{
    ActivityRepo, FeedRepo, IdempotencyRecord, IdempotencyRepo, IdempotencyScope, JobRepo, LimitRepo, NewSession,
    RelationshipRepo, RepoError, SessionRepo, SessionUser, StatsRepo, StatsScans, Store, UnitOfWork, UserRepo,
};

stride_repository::each_backend!(
    store:
    users_round_trip_and_usernames_are_unique,
    profiles_can_be_updated,
    sessions_expire_and_can_be_revoked,
    activities_round_trip_verbatim,
    activity_updates_and_deletes_report_missing_rows,
    pages_are_newest_first_ties_by_id_and_never_repeat_an_item,
    a_dropped_unit_of_work_rolls_back_every_repository,
    a_unit_of_work_that_overruns_its_deadline_times_out_and_leaves_the_pool_usable,
    idempotency_keys_are_per_user_and_expire,
    concurrent_writers_all_commit,
    finished_units_of_work_return_their_connection_to_the_pool,
    rolled_back_writes_change_nothing_and_keep_their_connection,
    only_expired_sessions_and_old_idempotency_keys_are_purged,
    rebuilt_statistics_equal_a_scan_of_the_activities,
    friendships_requests_and_blocks_round_trip,
    feed_chunks_filter_visibility_before_each_limit_and_equal_the_reference,
    a_rolled_back_enqueue_leaves_no_job_and_unique_keys_hold_until_final,
    claims_fence_every_transition_by_attempt,
    an_expired_lease_is_rescued_by_the_next_claim_or_discarded_on_its_last_attempt,
    operators_list_count_retry_cancel_and_purge,
    a_batched_completion_is_fenced_per_job,
    a_rescued_attempt_cannot_be_failed_or_rescheduled_by_the_stale_one,
    rate_limit_buckets_follow_the_reference_rule_and_concurrent_takes_never_overspend,
    a_server_key_is_made_once_and_read_by_everyone_after,
);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn user(name: &str) -> User {
    let username = Username::parse(name).unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::parse("Europe/Paris").unwrap(),
        created_at: now(),
    }
}

fn activity(owner: UserId, started_at: &str, title: &str) -> Activity {
    let draft = ActivityDraft {
        sport: Sport::Run,
        title: Title::parse(title).unwrap(),
        started_at: StartedAt::new(DateTime::parse_from_rfc3339(started_at).unwrap()),
        duration: Moving::from_seconds(1800).unwrap(),
        distance: Distance::from_metres(5012.5).unwrap(),
        visibility: Visibility::Public,
        start_latlng: None,
        description: None,
    };
    Activity::create(ActivityId::new(), owner, draft, now())
}

async fn insert_user<S: Store>(store: &S, name: &str) -> User {
    let user = user(name);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_user(&user, "hash").await.unwrap();
    uow.commit().await.unwrap();
    user
}

async fn users_round_trip_and_usernames_are_unique<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;

    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.user_by_id(alice.id).await.unwrap(), Some(alice.clone()));
    let creds = uow.credentials_by_username(&alice.username).await.unwrap().unwrap();
    assert_eq!((creds.user, creds.password_hash.as_str()), (alice.clone(), "hash"));
    assert!(uow.user_by_id(UserId::new()).await.unwrap().is_none());
    drop(uow);

    let mut uow = store.write(deadline()).await.unwrap();
    let err = uow.insert_user(&user("ALICE"), "other").await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict { .. }), "{err:?}");
}

async fn profiles_can_be_updated<S: Store>(store: S) {
    let mut alice = insert_user(&store, "alice").await;
    alice.display_name = DisplayName::parse("Alice 🏔").unwrap();
    alice.timezone = TimeZone::parse("Asia/Tokyo").unwrap();
    let mut uow = store.write(deadline()).await.unwrap();
    uow.update_user_profile(&alice).await.unwrap();
    assert!(matches!(uow.update_user_profile(&user("ghost")).await, Err(RepoError::NotFound)));
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.user_by_id(alice.id).await.unwrap(), Some(alice));
}

async fn sessions_expire_and_can_be_revoked<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let session = NewSession {
        token_hash: [7; 32],
        user_id: alice.id,
        created_at: now(),
        expires_at: now() + TimeDelta::hours(1),
    };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_session(&session).await.unwrap();
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(
        uow.user_by_session(&[7; 32], now()).await.unwrap(),
        Some(SessionUser { user: alice.clone(), stats_version: 0, social_version: 0 })
    );
    assert_eq!(uow.user_by_session(&[7; 32], now() + TimeDelta::hours(2)).await.unwrap(), None);
    assert_eq!(uow.user_by_session(&[8; 32], now()).await.unwrap(), None);
    drop(uow);

    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.delete_session(&[7; 32]).await.unwrap());
    assert!(!uow.delete_session(&[7; 32]).await.unwrap());
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.user_by_session(&[7; 32], now()).await.unwrap(), None);
}

async fn activities_round_trip_verbatim<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let title = "Robert'); DROP TABLE activities;-- \"quoted\" 🏃‍♀️💨";
    let run = activity(alice.id, "2026-03-01T23:30:00.123456-08:00", title);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&run).await.unwrap();
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    let stored = uow.activity_by_id(run.id).await.unwrap().unwrap();
    assert_eq!(stored, run);
    assert_eq!(stored.title.as_str(), title);
    assert_eq!(stored.started_at.as_datetime().to_rfc3339(), "2026-03-01T23:30:00.123456-08:00");
    assert_eq!(stored.local_date().date().to_string(), "2026-03-01");
    assert_eq!(uow.activity_by_id(ActivityId::new()).await.unwrap(), None);
}

async fn activity_updates_and_deletes_report_missing_rows<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let mut run = activity(alice.id, "2026-03-01T08:00:00Z", "morning");
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&run).await.unwrap();
    run.title = Title::parse("renamed").unwrap();
    run.visibility = Visibility::Private;
    uow.update_activity(&run).await.unwrap();
    assert_eq!(uow.activity_by_id_for_update(run.id).await.unwrap(), Some(run.clone()));
    let ghost = activity(alice.id, "2026-03-01T08:00:00Z", "ghost");
    assert!(matches!(uow.update_activity(&ghost).await, Err(RepoError::NotFound)));
    assert!(uow.delete_activity(run.id).await.unwrap());
    assert!(!uow.delete_activity(run.id).await.unwrap());
    uow.commit().await.unwrap();
}

async fn pages_are_newest_first_ties_by_id_and_never_repeat_an_item<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let bob = insert_user(&store, "bob").await;
    // Two pairs share an instant expressed in different offsets; ids break those ties.
    let starts = [
        "2026-01-01T10:00:00Z",
        "2026-01-01T11:00:00+01:00",
        "2026-01-02T10:00:00Z",
        "2026-01-03T10:00:00Z",
        "2026-01-03T05:00:00-05:00",
        "2026-01-04T10:00:00Z",
        "2026-01-05T10:00:00Z",
    ];
    let mut uow = store.write(deadline()).await.unwrap();
    for start in starts {
        uow.insert_activity(&activity(alice.id, start, "")).await.unwrap();
    }
    uow.insert_activity(&activity(bob.id, "2026-01-03T10:00:00Z", "not alice's")).await.unwrap();
    uow.commit().await.unwrap();

    let mut seen: Vec<Activity> = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let mut uow = store.read(deadline()).await.unwrap();
        let page = uow.list_activities(alice.id, cursor, 3).await.unwrap();
        drop(uow);
        pages += 1;
        if pages == 2 {
            // A new activity arriving mid-pagination, newer than everything, must not shift pages.
            let mut uow = store.write(deadline()).await.unwrap();
            uow.insert_activity(&activity(alice.id, "2026-02-01T10:00:00Z", "late")).await.unwrap();
            uow.commit().await.unwrap();
        }
        let Some(last) = page.last() else { break };
        cursor = Some(ActivityCursor { started_at_utc_micros: last.started_at.utc_micros(), id: last.id });
        seen.extend(page);
    }
    assert_eq!(seen.len(), starts.len(), "every item exactly once");
    let keys: Vec<_> = seen.iter().map(|a| (a.started_at.utc_micros(), a.id)).collect();
    let mut expected = keys.clone();
    expected.sort_by(|a, b| b.cmp(a));
    expected.dedup();
    assert_eq!(keys, expected, "newest first, ties by id descending, no repeats");
    assert!(seen.iter().all(|a| a.user_id == alice.id));
}

async fn a_dropped_unit_of_work_rolls_back_every_repository<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let run = activity(alice.id, "2026-03-01T08:00:00Z", "never committed");
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&run).await.unwrap();
    let record = IdempotencyRecord { fingerprint: vec![1], activity_id: run.id };
    let key = IdempotencyScope { user: alice.id, key: "k", not_before: now() - TimeDelta::hours(24) };
    uow.record_idempotency_key(key, &record, now()).await.unwrap();
    drop(uow);

    // The next unit of work may well get a fresh connection; either way nothing leaked.
    for _ in 0..3 {
        let mut uow = store.read(deadline()).await.unwrap();
        assert_eq!(uow.activity_by_id(run.id).await.unwrap(), None);
        assert_eq!(uow.find_idempotency_key(key).await.unwrap(), None);
    }
    // And the writer is free again: a dropped write never holds the lock.
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&run).await.unwrap();
    uow.commit().await.unwrap();
}

/// A statement that takes well over the deadline below on either engine.
const SLOW_SQL: &[(&str, &str)] = &[
    (
        "sqlite",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT count(*) FROM c",
    ),
    ("postgres", "SELECT pg_sleep(5)"),
];

async fn a_unit_of_work_that_overruns_its_deadline_times_out_and_leaves_the_pool_usable<S: Store>(store: S)
where
    S::Uow: RawSql,
{
    let alice = insert_user(&store, "alice").await;
    let slow = SLOW_SQL.iter().find(|(b, _)| *b == S::BACKEND.name()).unwrap().1;

    // Generous enough for BEGIN and the insert on a loaded machine; only the slow statement
    // can overrun it.
    let mut uow = store.write(Deadline::after(Duration::from_millis(750))).await.unwrap();
    uow.insert_activity(&activity(alice.id, "2026-03-01T08:00:00Z", "half done")).await.unwrap();
    let err = uow.raw(slow).await.unwrap_err();
    assert!(matches!(err, RepoError::Timeout), "{err:?}");
    drop(uow);

    // Every connection of the pool, used in turn and all at once, still works.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut uow = store.read(deadline()).await.unwrap();
        assert_eq!(uow.list_activities(alice.id, None, 10).await.unwrap(), vec![], "the write was rolled back");
        held.push(uow);
    }
    drop(held);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&activity(alice.id, "2026-03-01T08:00:00Z", "after")).await.unwrap();
    uow.commit().await.unwrap();
}

async fn idempotency_keys_are_per_user_and_expire<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let bob = insert_user(&store, "bob").await;
    let day_ago = now() - TimeDelta::hours(24);
    let first = IdempotencyRecord { fingerprint: vec![1, 2], activity_id: ActivityId::new() };
    let second = IdempotencyRecord { fingerprint: vec![3], activity_id: ActivityId::new() };

    let key = |user: UserId, not_before| IdempotencyScope { user, key: "key-1", not_before };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.record_idempotency_key(key(alice.id, day_ago - TimeDelta::hours(25)), &first, now() - TimeDelta::hours(25))
        .await
        .unwrap();
    // Bob may use the same key.
    uow.record_idempotency_key(key(bob.id, day_ago), &second, now()).await.unwrap();
    uow.commit().await.unwrap();

    let mut uow = store.write(deadline()).await.unwrap();
    assert_eq!(uow.find_idempotency_key(key(alice.id, day_ago)).await.unwrap(), None, "expired");
    assert_eq!(uow.find_idempotency_key(key(bob.id, day_ago)).await.unwrap(), Some(second.clone()));
    // An expired key is replaced; a live one is a conflict.
    uow.record_idempotency_key(key(alice.id, day_ago), &second, now()).await.unwrap();
    let err = uow.record_idempotency_key(key(alice.id, day_ago), &first, now()).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict { .. }), "{err:?}");
}

async fn concurrent_writers_all_commit<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        writers.spawn(async move {
            let mut uow = store.write(deadline()).await?;
            // Read, then write: the pattern that makes deferred SQLite transactions fail with
            // "database is locked".
            let existing = uow.list_activities(alice.id, None, 1).await?;
            let start = format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60);
            uow.insert_activity(&activity(alice.id, &start, &format!("#{i} after {}", existing.len()))).await?;
            uow.commit().await
        });
    }
    while let Some(result) = writers.join_next().await {
        result.unwrap().unwrap();
    }
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.list_activities(alice.id, None, 100).await.unwrap().len(), 40);
}

async fn finished_units_of_work_return_their_connection_to_the_pool<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    for _ in 0..5 {
        let mut uow = store.read(deadline()).await.unwrap();
        uow.user_by_id(alice.id).await.unwrap();
        drop(uow);
        let mut uow = store.write(deadline()).await.unwrap();
        uow.user_by_id(alice.id).await.unwrap();
        uow.commit().await.unwrap();
    }
    // sqlx returns (or closes) a dropped connection from a background task: wait, bounded,
    // until the pools settle with every connection idle, then check none was closed.
    until_pools_settle(&store).await;
    for pool in store.pool_stats() {
        assert!(pool.size >= 1, "{pool:?}: connections were closed instead of reused");
    }
}

/// sqlx returns (or closes) a dropped connection from a background task: waits, bounded, until
/// every pool's connections are all idle again.
async fn until_pools_settle<S: Store>(store: &S) {
    let settle_by = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.pool_stats().iter().any(|p| p.idle != p.size) {
        assert!(tokio::time::Instant::now() < settle_by, "pools never settled: {:?}", store.pool_stats());
        tokio::task::yield_now().await;
    }
}

async fn rolled_back_writes_change_nothing_and_keep_their_connection<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let run = activity(alice.id, "2026-03-01T08:00:00Z", "rolled back");
    for _ in 0..5 {
        let mut uow = store.write(deadline()).await.unwrap();
        uow.insert_activity(&run).await.unwrap();
        uow.rollback().await.unwrap();
    }
    assert_eq!(store.read(deadline()).await.unwrap().activity_by_id(run.id).await.unwrap(), None);
    // A dropped write closes its connection; a rolled-back one must not. Wait, bounded, for the
    // pools to settle with every connection idle, then check none was closed.
    until_pools_settle(&store).await;
    for pool in store.pool_stats() {
        assert!(pool.size >= 1, "{pool:?}: a rolled-back unit of work closed its connection");
    }
}

async fn only_expired_sessions_and_old_idempotency_keys_are_purged<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let mut uow = store.write(deadline()).await.unwrap();
    for (n, hours) in [-3_i64, -2, -1, 1, 2].into_iter().enumerate() {
        let session = NewSession {
            token_hash: [n as u8; 32],
            user_id: alice.id,
            created_at: now() - TimeDelta::hours(24),
            expires_at: now() + TimeDelta::hours(hours),
        };
        uow.insert_session(&session).await.unwrap();
    }
    for (n, age) in [30_i64, 26, 2].into_iter().enumerate() {
        let key = format!("key-{n}");
        let scope = IdempotencyScope { user: alice.id, key: &key, not_before: now() - TimeDelta::hours(48) };
        let record = IdempotencyRecord { fingerprint: vec![n as u8], activity_id: ActivityId::new() };
        uow.record_idempotency_key(scope, &record, now() - TimeDelta::hours(age)).await.unwrap();
    }
    uow.commit().await.unwrap();

    let mut uow = store.write(deadline()).await.unwrap();
    assert_eq!(uow.delete_expired_sessions(now(), 2).await.unwrap(), 2, "a batch stops at its limit");
    assert_eq!(uow.delete_expired_sessions(now(), 2).await.unwrap(), 1);
    assert_eq!(uow.delete_expired_sessions(now(), 2).await.unwrap(), 0);
    assert_eq!(uow.delete_idempotency_keys_before(now() - TimeDelta::hours(24), 100).await.unwrap(), 2);
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    for n in 0..5u8 {
        let alive = uow.user_by_session(&[n; 32], now() - TimeDelta::hours(10)).await.unwrap().is_some();
        assert_eq!(alive, n >= 3, "session {n}");
    }
    let live = IdempotencyScope { user: alice.id, key: "key-2", not_before: now() - TimeDelta::hours(48) };
    assert!(uow.find_idempotency_key(live).await.unwrap().is_some(), "a key inside its window stays");
}

async fn rebuilt_statistics_equal_a_scan_of_the_activities<S: Store>(store: S)
where
    S::Uow: StatsScans,
{
    let alice = insert_user(&store, "alice").await;
    let mut uow = store.write(deadline()).await.unwrap();
    // Out of date order, so a scan that relied on the order rows come back in would show it.
    for (n, day) in [10, 2, 13, 1, 7, 2, 12, 3, 11, 8].into_iter().enumerate() {
        let mut activity = activity(alice.id, &format!("2026-03-{day:02}T0{}:00:00+02:00", n % 9), "");
        activity.visibility = [Visibility::Private, Visibility::Friends, Visibility::Public][n % 3];
        uow.insert_activity(&activity).await.unwrap();
    }
    uow.rebuild_stats(alice.id).await.unwrap();
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    let today = stride_domain::LocalDate::new(chrono::NaiveDate::from_ymd_opt(2026, 3, 13).unwrap()).day_number();
    for scope in StatsScope::ALL {
        let totals = uow.stats_totals(alice.id, scope).await.unwrap();
        assert_eq!(totals.activities, uow.scan_count(alice.id, scope).await.unwrap(), "{scope:?}");
        assert_eq!(totals.distance_mm, uow.scan_distance_mm(alice.id, scope).await.unwrap(), "{scope:?}");
        assert_eq!(totals.duration_s, uow.scan_duration_s(alice.id, scope).await.unwrap(), "{scope:?}");
        let days = uow.scan_active_days(alice.id, scope).await.unwrap();
        let StreakLengths { current, longest } = streaks_from_days(&days, today);
        let latest = uow.latest_run_starting_by(alice.id, scope, today).await.unwrap();
        let stored_longest = uow.longest_run(alice.id, scope).await.unwrap().map_or(0, |r| r.days());
        assert_eq!((stride_domain::current_streak(latest, today), stored_longest), (current, longest), "{scope:?}");
        assert_eq!(
            uow.scan_streaks(alice.id, scope, today).await.unwrap(),
            StreakLengths { current, longest },
            "scan streaks, {scope:?}"
        );
    }
    let owner = uow.stats_totals(alice.id, StatsScope::Owner).await.unwrap();
    assert_eq!(owner.activities, 10);
    // Known answers, not just agreement: each active day once, ascending (March 2 had two).
    let march =
        |day| stride_domain::LocalDate::new(chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap()).day_number();
    assert_eq!(
        uow.scan_active_days(alice.id, StatsScope::Owner).await.unwrap(),
        [1, 2, 3, 7, 8, 10, 11, 12, 13].map(march).to_vec()
    );
    assert_eq!(
        uow.scan_streaks(alice.id, StatsScope::Owner, today).await.unwrap(),
        StreakLengths { current: 4, longest: 4 }
    );
}

/// PostgreSQL only: connections are checked on the way out of the pool only when they sat idle
/// (`ping_idle_after`), so a server that killed them in the meantime costs no request.
mod postgres_idle_connections {
    use std::time::Duration;

    use sqlx::Connection;
    use stride_repository::testing::TestDatabase;
    use stride_repository::{PgStore, Store, StoreConfig, UserRepo};

    use super::{deadline, insert_user};

    /// Opens at least `count` connections, returns them all to the pool, then has the server
    /// terminate every one of them, as a restart or an idle-session killer would. Returns how
    /// many the pool now holds.
    async fn pool_of_killed_connections(db: &TestDatabase, store: &PgStore, count: usize) -> usize {
        let mut held = Vec::new();
        for _ in 0..count {
            held.push(store.read(deadline()).await.unwrap());
        }
        drop(held);
        let settle_by = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.pool_stats().iter().any(|p| p.idle != p.size || p.size < count as u32) {
            assert!(tokio::time::Instant::now() < settle_by, "pool never settled: {:?}", store.pool_stats());
            tokio::task::yield_now().await;
        }
        let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        let pooled = store.pool_stats()[0].size as usize;
        assert_eq!(killed, pooled as i64, "every pooled connection was terminated");
        admin.close().await.unwrap();
        pooled
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_killed_while_idle_are_replaced_before_anyone_uses_them() {
        let db = TestDatabase::postgres().await;
        let store = PgStore::connect(&StoreConfig { ping_idle_after: Duration::ZERO, ..db.config() }).await.unwrap();
        store.migrate().await.unwrap();
        let alice = insert_user(&store, "alice").await;
        let killed = pool_of_killed_connections(&db, &store, 3).await;
        for _ in 0..killed {
            let mut uow = store.read(deadline()).await.expect("a dead connection is never handed out");
            assert_eq!(uow.user_by_id(alice.id).await.unwrap().map(|u| u.id), Some(alice.id));
        }
        store.close().await;
    }

    /// The other side of the trade-off, and proof the check above is what saves the request: a
    /// connection handed out without a ping surfaces its death as an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_idle_check_a_killed_connection_fails_its_unit_of_work() {
        let db = TestDatabase::postgres().await;
        let never = Duration::from_secs(3600);
        let store = PgStore::connect(&StoreConfig { ping_idle_after: never, ..db.config() }).await.unwrap();
        store.migrate().await.unwrap();
        let alice = insert_user(&store, "alice").await;
        pool_of_killed_connections(&db, &store, 1).await;
        let outcome = async { store.read(deadline()).await?.user_by_id(alice.id).await }.await;
        assert!(outcome.is_err(), "the killed connection was used");
        store.close().await;
    }
}

/// PostgreSQL only: a statement the client has given up on stops on the server too, whether the
/// deadline passed or the whole request was dropped, long before the connection-wide
/// `statement_timeout` would stop it.
mod postgres_abandoned_statements {
    use std::time::Duration;

    use sqlx::Connection;
    use stride_concurrency::Deadline;
    use stride_repository::testing::TestDatabase;
    use stride_repository::{PgStore, RepoError, Store, StoreConfig};

    use super::RawSql;

    /// Longer than any test waits, so only cancellation can end it early.
    const SLEEP: &str = "SELECT pg_sleep(30) /* abandoned-statement probe */";
    /// Far beyond the probe's own length: the cap is not what stops it.
    const CAP: Duration = Duration::from_secs(120);

    async fn store(db: &TestDatabase) -> PgStore {
        PgStore::connect(&StoreConfig { statement_timeout: CAP, ..db.config() }).await.unwrap()
    }

    async fn probes_running(admin: &mut sqlx::PgConnection) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%abandoned-statement probe%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(admin)
        .await
        .unwrap()
    }

    /// Polls the server until `wanted` probes run, failing after `within`. `pg_stat_activity`
    /// has no change notification to wait on; the sleep only spaces the polls out, and no
    /// outcome is assumed from time passing.
    async fn until_probes_running(admin: &mut sqlx::PgConnection, wanted: i64, within: Duration) {
        let give_up = tokio::time::Instant::now() + within;
        loop {
            let running = probes_running(admin).await;
            if running == wanted {
                return;
            }
            assert!(tokio::time::Instant::now() < give_up, "{running} probes still running, wanted {wanted}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_past_its_deadline_stops_on_the_server() {
        let db = TestDatabase::postgres().await;
        let store = store(&db).await;
        let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();

        let mut uow = store.read(Deadline::after(Duration::from_millis(300))).await.unwrap();
        let err = uow.raw(SLEEP).await.unwrap_err();
        assert!(matches!(err, RepoError::Timeout), "{err:?}");
        drop(uow);
        until_probes_running(&mut admin, 0, Duration::from_secs(5)).await;
        admin.close().await.unwrap();
        store.close().await;
    }

    /// A server too old for `client_connection_check_interval` refuses it as it refuses any
    /// unknown setting (SQLSTATE 42704); an unknown setting of our own stands in for it here.
    #[tokio::test]
    async fn a_refused_connection_setting_names_the_postgresql_version_needed() {
        let db = TestDatabase::postgres().await;
        let separator = if db.url().contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}options=-c%20stride_no_such_setting%3D1", db.url());
        let err = PgStore::connect(&StoreConfig::new(url)).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("stride_no_such_setting"), "{message}");
        assert!(message.contains("PostgreSQL 14 or later"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_read_stops_on_the_server() {
        let db = TestDatabase::postgres().await;
        let store = store(&db).await;
        let mut admin = sqlx::PgConnection::connect(db.url()).await.unwrap();

        let request = tokio::spawn({
            let store = store.clone();
            async move { store.read(Deadline::after(CAP)).await?.raw(SLEEP).await }
        });
        until_probes_running(&mut admin, 1, Duration::from_secs(10)).await;
        // What axum does to a handler whose client disconnected.
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        until_probes_running(&mut admin, 0, Duration::from_secs(5)).await;
        admin.close().await.unwrap();
        store.close().await;
    }
}

async fn friendships_requests_and_blocks_round_trip<S: Store>(store: S) {
    use stride_domain::{FriendRequestId, RequestDirection, Tie};
    let (ann, ben, cy) =
        (insert_user(&store, "ann").await, insert_user(&store, "ben").await, insert_user(&store, "cyd").await);
    let mut uow = store.write(deadline()).await.unwrap();
    assert_eq!(uow.social_version(ann.id).await.unwrap(), Some(0));
    uow.lock_pair(ann.id, ben.id).await.unwrap();
    let request = FriendRequestId::new();
    uow.insert_friend_request(request, ann.id, ben.id, now()).await.unwrap();
    assert_eq!(uow.request_between(ann.id, ben.id).await.unwrap(), Some(request));
    assert_eq!(uow.request_between(ben.id, ann.id).await.unwrap(), None);
    let stored = uow.friend_request(request).await.unwrap().unwrap();
    assert_eq!((stored.from.username.as_str(), stored.to.username.as_str()), ("ann", "ben"));
    let incoming = uow.friend_requests(ben.id, RequestDirection::Incoming, None, 10).await.unwrap();
    assert_eq!(incoming.iter().map(|r| r.id).collect::<Vec<_>>(), vec![request]);
    assert_eq!(uow.pending_outgoing(ann.id).await.unwrap(), 1);
    uow.delete_requests_between(ben.id, ann.id).await.unwrap();
    assert_eq!(uow.pending_outgoing(ann.id).await.unwrap(), 0);

    uow.insert_friendship(ann.id, ben.id, now()).await.unwrap();
    assert_eq!(uow.tie(ann.id, ben.id).await.unwrap(), Tie::Friends);
    assert_eq!(uow.tie(ben.id, ann.id).await.unwrap(), Tie::Friends, "both sides");
    assert_eq!(uow.friend_ids(ben.id).await.unwrap(), vec![ann.id]);
    assert_eq!(uow.friend_count(ann.id).await.unwrap(), 1);
    let friends = uow.friends(ann.id, None, 10).await.unwrap();
    assert_eq!(friends[0].user.id, ben.id);
    assert!(uow.insert_block(cy.id, ann.id, now()).await.unwrap());
    assert!(!uow.insert_block(cy.id, ann.id, now()).await.unwrap(), "a second block is no new block");
    assert_eq!(uow.tie(ann.id, cy.id).await.unwrap(), Tie::Blocked, "either direction");
    let one_way = uow.blocks(cy.id, None, 10).await.unwrap().remove(0);
    assert_eq!((one_way.id, one_way.profile.map(|p| p.username)), (ann.id, Some(ann.username.clone())));
    let since = uow.block_since(cy.id, ann.id).await.unwrap().expect("blocked");
    assert_eq!(uow.blocks(cy.id, None, 10).await.unwrap()[0].since, since);
    assert_eq!(uow.block_since(ann.id, cy.id).await.unwrap(), None, "a block has a direction");
    // Once ann blocks cy too, cy's list names her by id only, and hers names cy by id only.
    assert!(uow.insert_block(ann.id, cy.id, now()).await.unwrap());
    let both_ways = uow.blocks(cy.id, None, 10).await.unwrap().remove(0);
    assert_eq!((both_ways.id, both_ways.profile), (ann.id, None));
    assert_eq!(uow.blocks(ann.id, None, 10).await.unwrap()[0].profile, None);
    assert!(uow.delete_block(ann.id, cy.id).await.unwrap());
    assert!(uow.delete_friendship(ben.id, ann.id).await.unwrap());
    assert_eq!(uow.tie(ann.id, ben.id).await.unwrap(), Tie::None);
    assert!(uow.friend_ids(ann.id).await.unwrap().is_empty(), "both rows gone");
    assert_eq!(uow.social_version(ann.id).await.unwrap(), Some(1));
    assert_eq!(uow.social_version(ben.id).await.unwrap(), Some(1));

    let sent = now();
    uow.record_request_send(ann.id, sent - TimeDelta::hours(30), sent - TimeDelta::hours(48)).await.unwrap();
    uow.record_request_send(ann.id, sent, sent - TimeDelta::hours(24)).await.unwrap();
    assert_eq!(uow.request_sends_since(ann.id, sent - TimeDelta::hours(24)).await.unwrap(), (1, Some(sent)));
    uow.insert_friend_request(FriendRequestId::new(), cy.id, ben.id, now()).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.write(deadline()).await.unwrap();
    let twin = uow.insert_friend_request(FriendRequestId::new(), cy.id, ben.id, now()).await;
    assert!(matches!(twin, Err(RepoError::Conflict { .. })), "one pending request per direction: {twin:?}");
}

async fn feed_chunks_filter_visibility_before_each_limit_and_equal_the_reference<S: Store>(store: S) {
    let (ann, ben) = (insert_user(&store, "ann").await, insert_user(&store, "ben").await);
    let mut uow = store.write(deadline()).await.unwrap();
    // Ann's three newest are private: a filter after the LIMIT would return nothing of hers.
    let mut visible = Vec::new();
    for (day, visibility) in [
        (1, Visibility::Public),
        (2, Visibility::Friends),
        (3, Visibility::Private),
        (4, Visibility::Private),
        (5, Visibility::Private),
    ] {
        let mut a = activity(ann.id, &format!("2026-03-0{day}T08:00:00Z"), "a");
        a.visibility = visibility;
        uow.insert_activity(&a).await.unwrap();
        if visibility != Visibility::Private {
            visible.push(a);
        }
    }
    for day in 1..=4 {
        let b = activity(ben.id, &format!("2026-03-0{day}T09:00:00Z"), "b");
        uow.insert_activity(&b).await.unwrap();
        visible.push(b);
    }
    uow.commit().await.unwrap();
    visible.sort_by(stride_domain::feed_order);
    let mut uow = store.read(deadline()).await.unwrap();
    let authors = [ann.id, ben.id];
    let mut after: Option<ActivityCursor> = None;
    let mut walked = Vec::new();
    loop {
        let chunk = uow.feed_chunk(&authors, after, 2).await.unwrap();
        let reference = uow.feed_reference(&authors, after, 2).await.unwrap();
        assert_eq!(chunk, reference);
        let Some(last) = chunk.last() else { break };
        after = Some(stride_domain::cursor_after(last));
        walked.extend(chunk);
    }
    assert_eq!(walked, visible);
    let private = uow.activities_visible(ann.id, &Visibility::ALL, None, 10).await.unwrap();
    assert_eq!(private.len(), 5);
    let public = uow.activities_visible(ann.id, &[Visibility::Public], None, 10).await.unwrap();
    assert_eq!(public.len(), 1);
}

fn new_job(kind: &str, unique_key: Option<&str>, max_attempts: u32) -> stride_domain::NewJob {
    stride_domain::NewJob {
        id: stride_domain::JobId::new(),
        kind: kind.to_owned(),
        payload: r#"{"n":1}"#.to_owned(),
        max_attempts,
        run_at: now() - TimeDelta::seconds(1),
        unique_key: unique_key.map(str::to_owned),
    }
}

async fn a_rolled_back_enqueue_leaves_no_job_and_unique_keys_hold_until_final<S: Store>(store: S) {
    let job = new_job("test.kind", Some("only-one"), 3);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.enqueue(&job, now()).await.unwrap());
    uow.rollback().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.job(job.id).await.unwrap(), None, "rolled back with its transaction");
    drop(uow);

    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.enqueue(&job, now()).await.unwrap());
    assert!(!uow.enqueue(&new_job("test.kind", Some("only-one"), 3), now()).await.unwrap(), "a duplicate is a no-op");
    let claimed = uow.claim("test.kind", now(), now() + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(!uow.enqueue(&new_job("test.kind", Some("only-one"), 3), now()).await.unwrap(), "running holds the key");
    assert!(uow.complete(job.id, 1, now()).await.unwrap());
    assert!(uow.enqueue(&new_job("test.kind", Some("only-one"), 3), now()).await.unwrap(), "final releases it");
    uow.commit().await.unwrap();
}

async fn claims_fence_every_transition_by_attempt<S: Store>(store: S) {
    use stride_domain::JobState;
    let job = new_job("test.kind", None, 3);
    let later = new_job("test.kind", None, 3);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.enqueue(&job, now()).await.unwrap();
    uow.enqueue(&stride_domain::NewJob { run_at: now() + TimeDelta::hours(1), ..later.clone() }, now()).await.unwrap();
    uow.enqueue(&new_job("other.kind", None, 3), now()).await.unwrap();
    let claimed = uow.claim("test.kind", now(), now() + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|l| l.id()).collect::<Vec<_>>(), vec![job.id], "only due jobs of the kind");
    let lease = &claimed[0];
    assert_eq!((lease.attempt(), lease.job.state), (1, JobState::Running));
    assert!(uow.heartbeat(job.id, 1, now() + TimeDelta::minutes(2)).await.unwrap());
    assert!(!uow.heartbeat(job.id, 2, now()).await.unwrap(), "another attempt's fence");
    let retry_at = now() - TimeDelta::seconds(1);
    assert!(uow.fail(job.id, 1, "boom", Some(retry_at), now()).await.unwrap());
    assert!(!uow.complete(job.id, 1, now()).await.unwrap(), "not running any more");
    let stored = uow.job(job.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.last_error.as_deref()), (JobState::Retryable, Some("boom")));
    let again = uow.claim("test.kind", now(), now() + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(again[0].attempt(), 2, "a retry is a new attempt");
    assert!(!uow.complete(job.id, 1, now()).await.unwrap(), "the stale attempt changes nothing");
    assert!(uow.reschedule(job.id, 2, now() - TimeDelta::seconds(1)).await.unwrap(), "a snooze gives the attempt back");
    let third = uow.claim("test.kind", now(), now() + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(third[0].attempt(), 2);
    assert!(uow.fail(job.id, 2, "no more", None, now()).await.unwrap());
    let stored = uow.job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Discarded);
    assert!(stored.finished_at.is_some());
    uow.commit().await.unwrap();
}

async fn an_expired_lease_is_rescued_by_the_next_claim_or_discarded_on_its_last_attempt<S: Store>(store: S) {
    use stride_domain::JobState;
    let (rescued, last) = (new_job("test.kind", None, 3), new_job("test.kind", None, 1));
    let mut uow = store.write(deadline()).await.unwrap();
    uow.enqueue(&rescued, now()).await.unwrap();
    uow.enqueue(&last, now()).await.unwrap();
    let short = now() + TimeDelta::seconds(5);
    assert_eq!(uow.claim("test.kind", now(), short, 10).await.unwrap().len(), 2);
    assert!(uow.claim("test.kind", now(), short, 10).await.unwrap().is_empty(), "leases hold");
    let later = short + TimeDelta::seconds(1);
    // Both are open; the job with one allowed attempt is the one a dead worker loses for good.
    assert_eq!(uow.count_open("test.kind", r#"{"n":1}"#).await.unwrap(), 2);
    assert_eq!(uow.count_open("test.kind", r#"{"n":2}"#).await.unwrap(), 0, "by exact payload");
    assert!(uow.discard_expired_last("test.kind", now()).await.unwrap().is_empty(), "not before the lease ends");
    let lost = uow.discard_expired_last("test.kind", later).await.unwrap();
    assert_eq!(
        lost.iter().map(|j| (j.id, j.attempt, j.state)).collect::<Vec<_>>(),
        vec![(last.id, 1, JobState::Discarded)]
    );
    assert!(uow.discard_expired_last("test.kind", later).await.unwrap().is_empty(), "once");
    assert_eq!(uow.count_open("test.kind", r#"{"n":1}"#).await.unwrap(), 1);
    let again = uow.claim("test.kind", later, later + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(again.iter().map(|l| (l.id(), l.attempt())).collect::<Vec<_>>(), vec![(rescued.id, 2)]);
    assert_eq!(again[0].job.last_error.as_deref(), Some(format!("{}1", stride_repository::RESCUE_NOTE).as_str()));
    assert!(!uow.complete(rescued.id, 1, later).await.unwrap(), "the first attempt is fenced out");
    assert!(uow.complete(rescued.id, 2, later).await.unwrap());
    let discarded = uow.job(last.id).await.unwrap().unwrap();
    assert_eq!(discarded.state, JobState::Discarded);
    assert!(discarded.last_error.unwrap().contains("last allowed attempt"));
    uow.commit().await.unwrap();
}

async fn operators_list_count_retry_cancel_and_purge<S: Store>(store: S) {
    use stride_domain::JobState;
    let (a, b) = (new_job("kind.a", None, 1), new_job("kind.b", None, 1));
    let mut uow = store.write(deadline()).await.unwrap();
    uow.enqueue(&a, now()).await.unwrap();
    uow.enqueue(&b, now()).await.unwrap();
    assert_eq!(uow.jobs(Some(JobState::Available), Some("kind.a".to_owned()), 10).await.unwrap()[0].id, a.id);
    assert_eq!(uow.jobs(None, None, 10).await.unwrap().len(), 2);
    assert!(uow.cancel_job(a.id, now()).await.unwrap());
    assert!(!uow.cancel_job(a.id, now()).await.unwrap(), "already final");
    let depths = uow.queue_depths(now()).await.unwrap();
    assert_eq!(depths.iter().map(|d| (d.kind.as_str(), d.due)).collect::<Vec<_>>(), vec![("kind.b", 1)]);
    assert!(uow.retry_job(a.id, now()).await.unwrap());
    assert!(!uow.retry_job(a.id, now()).await.unwrap(), "available already");
    let counts = uow.job_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![("kind.a".to_owned(), JobState::Available, 1), ("kind.b".to_owned(), JobState::Available, 1)]
    );
    let claimed = uow.claim("kind.b", now(), now() + TimeDelta::minutes(1), 1).await.unwrap();
    assert!(uow.complete(claimed[0].id(), 1, now() - TimeDelta::days(8)).await.unwrap());
    assert_eq!(uow.purge_finished_jobs(now() - TimeDelta::days(7), 100).await.unwrap(), 1);
    assert_eq!(uow.jobs(None, None, 10).await.unwrap().len(), 1);
    uow.commit().await.unwrap();
}

async fn a_batched_completion_is_fenced_per_job<S: Store>(store: S) {
    use stride_domain::JobState;
    let jobs: Vec<_> = (0..3).map(|_| new_job("batch.kind", None, 3)).collect();
    let mut uow = store.write(deadline()).await.unwrap();
    for job in &jobs {
        uow.enqueue(job, now()).await.unwrap();
    }
    let leases = uow.claim("batch.kind", now(), now() + TimeDelta::minutes(1), 10).await.unwrap();
    assert_eq!(leases.len(), 3);
    // The second fence is stale (a wrong attempt): only the other two complete.
    let fences = vec![(leases[0].id(), 1), (leases[1].id(), 2), (leases[2].id(), 1)];
    assert_eq!(uow.complete_batch(&fences, now()).await.unwrap(), 2);
    assert_eq!(uow.job(leases[1].id()).await.unwrap().unwrap().state, JobState::Running);
    assert_eq!(uow.job(leases[2].id()).await.unwrap().unwrap().state, JobState::Completed);
    assert_eq!(uow.complete_batch(&[], now()).await.unwrap(), 0);
    uow.commit().await.unwrap();
}

/// The rescue leaves attempt 2 running; the dead attempt 1 must not be able to touch it. A
/// fence without `attempt` in its WHERE would let `fail(id, 1)` make the job retryable (or
/// discard it) and `reschedule(id, 1)` make it available, under the running attempt's feet.
async fn a_rescued_attempt_cannot_be_failed_or_rescheduled_by_the_stale_one<S: Store>(store: S) {
    use stride_domain::JobState;
    let job = new_job("test.rescue", None, 3);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.enqueue(&job, now()).await.unwrap();
    let dead = uow.claim("test.rescue", now(), now() - TimeDelta::seconds(1), 1).await.unwrap();
    assert_eq!(dead[0].attempt(), 1);
    let rescue = uow.claim("test.rescue", now(), now() + TimeDelta::minutes(5), 1).await.unwrap();
    assert_eq!(rescue[0].attempt(), 2, "the expired lease was rescued");
    let running = uow.job(job.id).await.unwrap().unwrap();

    assert!(!uow.fail(job.id, 1, "late failure", Some(now()), now()).await.unwrap(), "a retryable fail");
    assert!(!uow.fail(job.id, 1, "late failure", None, now()).await.unwrap(), "a final fail");
    assert!(!uow.reschedule(job.id, 1, now()).await.unwrap());
    assert!(!uow.heartbeat(job.id, 1, now() + TimeDelta::hours(1)).await.unwrap());
    let stored = uow.job(job.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Running, 2));
    assert_eq!(stored, running, "the stale attempt changed nothing: state, error, lease, run_at");

    // The running attempt itself still can.
    assert!(uow.reschedule(job.id, 2, now()).await.unwrap());
    assert_eq!(uow.job(job.id).await.unwrap().unwrap().state, JobState::Available);
    uow.commit().await.unwrap();
}

async fn take<S: Store>(store: &S, key: &str, limit: stride_domain::RateLimit, at: DateTime<Utc>) -> bool {
    let mut uow = store.write(deadline()).await.unwrap();
    let admission = uow.take(key, limit, at).await.unwrap();
    uow.commit().await.unwrap();
    admission.is_admitted()
}

async fn rate_limit_buckets_follow_the_reference_rule_and_concurrent_takes_never_overspend<S: Store>(store: S) {
    use stride_domain::{Admission, RateLimit};
    let limit = RateLimit::new(5, Duration::from_secs(900));
    let start = now();
    // The SQL bucket and the domain's reference agree attempt by attempt, refusals included.
    let offsets_s = [0, 0, 1, 2, 3, 4, 5, 170, 185, 186, 400, 2000, 2000, 2000];
    let mut reference = None;
    for offset in offsets_s {
        let at = start + TimeDelta::seconds(offset);
        let (expected, next) = limit.decide(reference, at.timestamp_micros());
        reference = Some(next);
        let mut uow = store.write(deadline()).await.unwrap();
        let got = uow.take("login:alice", limit, at).await.unwrap();
        uow.commit().await.unwrap();
        assert_eq!(got, expected, "attempt at +{offset} s");
    }
    // Keys are independent, and a forgotten key is full again.
    assert!(take(&store, "login:bob", limit, start).await);
    for _ in 0..4 {
        take(&store, "login:carol", limit, start).await;
    }
    assert!(take(&store, "login:carol", limit, start).await);
    assert!(!take(&store, "login:carol", limit, start).await);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.give_back("login:carol", limit).await.unwrap();
    uow.commit().await.unwrap();
    assert!(take(&store, "login:carol", limit, start).await, "a token given back is taken again");
    assert!(!take(&store, "login:carol", limit, start).await, "one token, not more");
    let mut uow = store.write(deadline()).await.unwrap();
    uow.forget("login:carol").await.unwrap();
    uow.commit().await.unwrap();
    assert!(take(&store, "login:carol", limit, start).await);

    // Twenty attempts at once on a fresh bucket of five: exactly five pass, on either backend.
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        attempts.spawn(async move { take(&store, "burst", limit, start).await });
    }
    let admitted = attempts.join_all().await.into_iter().filter(|&admitted| admitted).count();
    assert_eq!(admitted, 5);

    // Only buckets that are full again are deleted: "burst" refills 900 s after `start`.
    let mut uow = store.write(deadline()).await.unwrap();
    let full_at_899 = uow.delete_full_buckets(start + TimeDelta::seconds(899), 100).await.unwrap();
    assert_eq!(full_at_899, 2, "bob's and carol's (one token each, back after 180 s)");
    assert_eq!(uow.delete_full_buckets(start + TimeDelta::seconds(10_000), 100).await.unwrap(), 2);
    let refused = uow.take("burst", RateLimit::per_minute(1), start).await.unwrap();
    assert_eq!(refused, Admission::Admitted, "a deleted bucket starts full");
    uow.commit().await.unwrap();
}

async fn a_server_key_is_made_once_and_read_by_everyone_after<S: Store>(store: S) {
    let mut first = store.write(deadline()).await.unwrap();
    assert_eq!(first.server_key("csrf", "one").await.unwrap(), "one");
    first.commit().await.unwrap();
    let mut second = store.write(deadline()).await.unwrap();
    assert_eq!(second.server_key("csrf", "two").await.unwrap(), "one");
    assert_eq!(second.server_key("other", "two").await.unwrap(), "two");
    second.commit().await.unwrap();
}
