//! `GET /me/stats` and `GET /users/{id}/stats`: streak rules at pinned instants, visibility,
//! and exactness of the maintained aggregates under concurrent writes (against a full recount).

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{TestApp, error_code, run};
use futures::StreamExt;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stride_concurrency::Deadline;
use stride_domain::{StatsScope, StreakLengths, UserId, streaks_from_days};
use stride_repository::{Backend, StatsRepo, StatsScans, Store};
use stride_services::ManualClock;

stride_repository::each_backend!(
    backend:
    streaks_follow_local_dates_gaps_deletes_and_moves,
    an_evening_activity_west_of_utc_counts_for_its_local_date,
    changing_time_zone_moves_only_today,
    streaks_across_a_dst_change_are_unbroken,
    a_cached_current_streak_expires_at_local_midnight,
    another_users_stats_are_not_found_and_bad_ids_are_404,
    aggregates_equal_a_full_recount_after_hundreds_of_concurrent_writes,
    concurrent_writes_on_adjacent_days_merge_into_one_run,
    weekly_totals_follow_local_dates_and_include_empty_weeks,
);

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

async fn stats(app: &TestApp, token: &str) -> Value {
    let response = app.get("/api/v1/me/stats", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn streaks(stats: &Value) -> (u64, u64) {
    (stats["current_streak_days"].as_u64().unwrap(), stats["longest_streak_days"].as_u64().unwrap())
}

async fn activity_at(app: &TestApp, token: &str, started_at: &str) -> String {
    app.create_activity(token, run(started_at)).await["id"].as_str().unwrap().to_owned()
}

async fn streaks_follow_local_dates_gaps_deletes_and_moves(backend: Backend) {
    let clock = ManualClock::new(at("2026-03-10T12:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let (token, user) = app.register("streaker").await;
    let empty = stats(&app, &token).await;
    assert_eq!(empty["user_id"], user["id"]);
    assert_eq!((empty["total_activities"].as_u64(), streaks(&empty)), (Some(0), (0, 0)));
    assert_eq!(empty.as_object().unwrap().len(), 7);

    activity_at(&app, &token, "2026-03-10T07:00:00Z").await;
    activity_at(&app, &token, "2026-03-10T18:00:00Z").await; // a second one the same day
    let only_on_ninth = activity_at(&app, &token, "2026-03-09T07:00:00Z").await;
    let on_eighth = activity_at(&app, &token, "2026-03-08T07:00:00Z").await;
    for day in ["02", "03", "04", "05"] {
        activity_at(&app, &token, &format!("2026-03-{day}T07:00:00Z")).await;
    }
    let s = stats(&app, &token).await;
    assert_eq!(streaks(&s), (3, 4), "8–10 March is current; 2–5 March is longest");
    assert_eq!(s["total_activities"], 8);
    assert_eq!(s["total_distance_m"], 40_000.0);
    assert_eq!(s["total_duration_s"], 8 * 1800);

    assert_eq!(
        app.delete(&format!("/api/v1/activities/{only_on_ninth}"), &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(streaks(&stats(&app, &token).await), (1, 4), "deleting the only activity of a day breaks the streak");

    let moved = app
        .patch(&format!("/api/v1/activities/{on_eighth}"), &token, json!({"started_at": "2026-03-09T07:00:00Z"}))
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let s = stats(&app, &token).await;
    assert_eq!(streaks(&s), (2, 4), "moving the 8th to the 9th rejoins the 9th and leaves the 8th empty");
    assert_eq!(s["total_activities"], 7);
}

async fn an_evening_activity_west_of_utc_counts_for_its_local_date(backend: Backend) {
    let clock = ManualClock::new(at("2026-03-11T12:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let (token, _) = app.register("seattle").await;
    // 23:30 on the 9th in Seattle is already the 10th in UTC; it counts for the 9th.
    activity_at(&app, &token, "2026-03-09T23:30:00-08:00").await;
    assert_eq!(streaks(&stats(&app, &token).await), (0, 1), "the 9th is two days before the 11th");
    activity_at(&app, &token, "2026-03-10T23:30:00-08:00").await;
    assert_eq!(streaks(&stats(&app, &token).await), (2, 2), "9th and 10th, the 10th being yesterday");
}

async fn changing_time_zone_moves_only_today(backend: Backend) {
    let clock = ManualClock::new(at("2026-03-10T12:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let token = app.register_in("kiribati", "Pacific/Kiritimati").await;
    // In Kiritimati (UTC+14) it is already 11 March: the 9th is two days ago.
    activity_at(&app, &token, "2026-03-09T10:00:00+14:00").await;
    assert_eq!(streaks(&stats(&app, &token).await), (0, 1));
    let patched = app.patch("/api/v1/me", &token, json!({"timezone": "UTC"})).await;
    assert_eq!(patched.status(), StatusCode::OK);
    // In UTC it is the 10th: the 9th was yesterday. The activity's own date did not move.
    assert_eq!(streaks(&stats(&app, &token).await), (1, 1));
    let page: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(page["items"][0]["local_date"], "2026-03-09");
}

async fn streaks_across_a_dst_change_are_unbroken(backend: Backend) {
    // Paris springs forward on 29 March 2026 (02:00 → 03:00): that day has 23 hours.
    let clock = ManualClock::new(at("2026-03-30T08:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let token = app.register_in("parisien", "Europe/Paris").await;
    for start in ["2026-03-28T22:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T00:30:00+02:00"] {
        activity_at(&app, &token, start).await;
    }
    assert_eq!(streaks(&stats(&app, &token).await), (3, 3));
}

async fn a_cached_current_streak_expires_at_local_midnight(backend: Backend) {
    // 23:00 in Tokyo on 10 March.
    let clock = ManualClock::new(at("2026-03-10T14:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let token = app.register_in("tokyo", "Asia/Tokyo").await;
    activity_at(&app, &token, "2026-03-10T20:00:00+09:00").await;
    let first = stats(&app, &token).await;
    assert_eq!(streaks(&first), (1, 1));
    assert_eq!(stats(&app, &token).await["as_of"], first["as_of"], "served from the cache");

    clock.advance(chrono::TimeDelta::hours(2)); // 01:00 on the 11th: yesterday still counts
    let after_midnight = stats(&app, &token).await;
    assert_ne!(after_midnight["as_of"], first["as_of"], "recomputed after local midnight, with no write");
    assert_eq!(streaks(&after_midnight), (1, 1));
    clock.advance(chrono::TimeDelta::hours(24)); // the 12th: the streak is over
    assert_eq!(streaks(&stats(&app, &token).await), (0, 1));
}

async fn another_users_stats_are_not_found_and_bad_ids_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, alice_user) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let mut public = run("2026-03-01T08:00:00Z");
    public["visibility"] = json!("public");
    app.create_activity(&alice, public).await;
    let alice_id = alice_user["id"].as_str().unwrap();

    let own: Value = app.get(&format!("/api/v1/users/{alice_id}/stats"), &alice).await.json().await.unwrap();
    assert_eq!(own["total_activities"], 1, "your own stats by id are your own stats");
    let theirs = app.get(&format!("/api/v1/users/{alice_id}/stats"), &bob).await;
    assert_eq!(error_code(theirs, StatusCode::NOT_FOUND).await, "not_found", "not friends: not found");
    let unknown = app.get(&format!("/api/v1/users/{}/stats", UserId::new()), &bob).await;
    assert_eq!(error_code(unknown, StatusCode::NOT_FOUND).await, "not_found");
    let malformed = app.get("/api/v1/users/not-an-id/stats", &bob).await;
    assert_eq!(error_code(malformed, StatusCode::NOT_FOUND).await, "not_found");
    let anonymous = app.request(reqwest::Method::GET, "/api/v1/me/stats", None, None).await;
    assert_eq!(error_code(anonymous, StatusCode::UNAUTHORIZED).await, "unauthenticated");
}

/// Random creates, updates (moving days, changing visibility and distance) and deletes for two
/// users, many at once; then every scope's stored aggregates must equal a recount from the
/// activities table, and the API must report the owner scope's.
async fn aggregates_equal_a_full_recount_after_hundreds_of_concurrent_writes(backend: Backend) {
    let clock = ManualClock::new(at("2026-03-31T12:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let mut users = Vec::new();
    for name in ["runner_one", "runner_two"] {
        let (token, user) = app.register(name).await;
        users.push((token, UserId::from_uuid(user["id"].as_str().unwrap().parse().unwrap())));
    }
    let mut rng = StdRng::seed_from_u64(20261129);
    let random_activity = |rng: &mut StdRng| {
        let day = rng.random_range(1..=31);
        let visibility = ["private", "friends", "public"][rng.random_range(0..3)];
        json!({
            "sport": "run",
            "started_at": format!("2026-03-{day:02}T{:02}:15:00+0{}:00", rng.random_range(0..24), rng.random_range(0..9)),
            "duration_s": rng.random_range(1..20_000),
            "distance_m": rng.random_range(0.0..50_000.0),
            "visibility": visibility,
        })
    };

    // Wave 1: 200 concurrent creates.
    let created: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let creates: Vec<(usize, Value)> = (0..200).map(|i| (i % 2, random_activity(&mut rng))).collect();
    futures::stream::iter(creates)
        .for_each_concurrent(16, |(owner, body)| {
            let (app, users, created) = (&app, &users, created.clone());
            async move {
                let activity = app.create_activity(&users[owner].0, body).await;
                created.lock().push((owner, activity["id"].as_str().unwrap().to_owned()));
            }
        })
        .await;

    // Wave 2: 80 updates, 60 deletes and 60 creates at once, each existing activity touched once.
    let mut existing = created.lock().clone();
    existing.sort();
    let mut operations = Vec::new();
    for (n, (owner, id)) in existing.into_iter().take(140).enumerate() {
        let body = random_activity(&mut rng);
        operations.push(if n % 7 < 4 { (owner, Some(id), Some(body)) } else { (owner, Some(id), None) });
    }
    for i in 0..60 {
        operations.push((i % 2, None, Some(random_activity(&mut rng))));
    }
    futures::stream::iter(operations)
        .for_each_concurrent(16, |(owner, id, body)| {
            let (app, users) = (&app, &users);
            async move {
                let token = &users[owner].0;
                let status = match (id, body) {
                    (Some(id), Some(body)) => {
                        app.patch(&format!("/api/v1/activities/{id}"), token, body).await.status()
                    }
                    (Some(id), None) => app.delete(&format!("/api/v1/activities/{id}"), token).await.status(),
                    (None, Some(body)) => app.post("/api/v1/activities", Some(token), body).await.status(),
                    (None, None) => unreachable!(),
                };
                assert!(status.is_success(), "{status}");
            }
        })
        .await;

    match backend {
        Backend::Sqlite => assert_recount(&app, app.db.sqlite_store().await, &users).await,
        Backend::Postgres => assert_recount(&app, app.db.postgres_store().await, &users).await,
    }
}

async fn assert_recount<S: Store>(app: &TestApp, store: S, users: &[(String, UserId)])
where
    S::Uow: StatsScans,
{
    let today = stride_domain::LocalDate::new(at("2026-03-31T12:00:00Z").date_naive()).day_number();
    let deadline = || Deadline::after(std::time::Duration::from_secs(30));
    for (token, user) in users {
        for scope in StatsScope::ALL {
            let mut uow = store.read(deadline()).await.unwrap();
            let stored = uow.stats_totals(*user, scope).await.unwrap();
            let count = uow.scan_count(*user, scope).await.unwrap();
            let distance_mm = uow.scan_distance_mm(*user, scope).await.unwrap();
            let duration_s = uow.scan_duration_s(*user, scope).await.unwrap();
            assert_eq!(
                (stored.activities, stored.distance_mm, stored.duration_s),
                (count, distance_mm, duration_s),
                "{scope:?}"
            );
            let days = uow.scan_active_days(*user, scope).await.unwrap();
            let StreakLengths { current, longest } = streaks_from_days(&days, today);
            let stored_longest = uow.longest_run(*user, scope).await.unwrap().map_or(0, |r| r.days());
            let latest = uow.latest_run_starting_by(*user, scope, today).await.unwrap();
            assert_eq!((stride_domain::current_streak(latest, today), stored_longest), (current, longest), "{scope:?}");
            if scope == StatsScope::Owner {
                let api = stats(app, token).await;
                assert_eq!(api["total_activities"].as_i64(), Some(count));
                assert_eq!(api["total_duration_s"].as_i64(), Some(duration_s));
                assert_eq!(api["total_distance_m"].as_f64(), Some(distance_mm as f64 / 1000.0));
                assert_eq!(streaks(&api), (u64::from(current), u64::from(longest)));
                assert!(count > 50, "the test exercised real volume: {count}");
            }
        }
    }
}

/// The race per-user serialisation prevents: two transactions each adding a day next to the
/// other's would both see no neighbour and leave two runs where there is one. Writers of one
/// user serialise on the user row (`bump_stats_version`, taken first) — and on PostgreSQL also
/// on the per-scope totals row each of them upserts before touching runs, which is why this
/// test alone cannot tell the two locks apart.
async fn concurrent_writes_on_adjacent_days_merge_into_one_run(backend: Backend) {
    let clock = ManualClock::new(at("2026-03-31T12:00:00Z"));
    let app = TestApp::spawn_with_clock(backend, clock).await;
    let (token, _) = app.register("every_day").await;
    let mut starts: Vec<String> = (1..=31)
        .flat_map(|day| [format!("2026-03-{day:02}T06:00:00Z"), format!("2026-03-{day:02}T18:00:00Z")])
        .collect();
    starts.sort_by_key(|s| (s[8..10].parse::<u32>().unwrap() * 7919) % 31); // interleave the days
    futures::stream::iter(starts)
        .for_each_concurrent(32, |start| {
            let (app, token) = (&app, &token);
            async move {
                app.create_activity(token, run(&start)).await;
            }
        })
        .await;
    let s = stats(&app, &token).await;
    assert_eq!(s["total_activities"], 62);
    assert_eq!(streaks(&s), (31, 31), "31 consecutive days are one run");
}

async fn weekly(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/me/stats/weekly{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn week_rows(body: &Value) -> Vec<(String, u64, f64, u64)> {
    body["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["week_start"].as_str().unwrap().to_owned(),
                w["activities"].as_u64().unwrap(),
                w["distance_m"].as_f64().unwrap(),
                w["duration_s"].as_u64().unwrap(),
            )
        })
        .collect()
}

async fn weekly_totals_follow_local_dates_and_include_empty_weeks(backend: Backend) {
    // Tuesday 10 March 2026, 05:00 in Los Angeles: the current week starts Monday 9 March.
    let app = TestApp::spawn_with_clock(backend, ManualClock::new(at("2026-03-10T12:00:00Z"))).await;
    let token = app.register_in("wendy", "America/Los_Angeles").await;
    let monday = activity_at(&app, &token, "2026-03-09T07:00:00-07:00").await;
    activity_at(&app, &token, "2026-03-10T01:00:00-07:00").await;
    // Sunday evening in California is already Monday in UTC: it counts in the Sunday's week.
    let sunday = activity_at(&app, &token, "2026-03-01T23:30:00-08:00").await;

    let body = weekly(&app, &token, "?weeks=3").await;
    assert!(body["as_of"].as_str().unwrap().starts_with("2026-03-10T12:00:00"));
    let row = |week: &str, n: u64| (week.to_owned(), n, 5000.0 * n as f64, 1800 * n);
    assert_eq!(week_rows(&body), vec![row("2026-02-23", 1), row("2026-03-02", 0), row("2026-03-09", 2)]);

    let twelve = week_rows(&weekly(&app, &token, "").await);
    assert_eq!(twelve.len(), 12, "twelve weeks by default");
    assert_eq!((twelve[0].0.as_str(), twelve[11].0.as_str()), ("2025-12-22", "2026-03-09"));
    assert_eq!(week_rows(&weekly(&app, &token, "?weeks=104").await).len(), 104);
    for bad in ["0", "105", "-1", "abc", ""] {
        let response = app.get(&format!("/api/v1/me/stats/weekly?weeks={bad}"), &token).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input", "weeks={bad}");
    }

    // Deleting and moving are accounted for in the same transaction.
    assert_eq!(app.delete(&format!("/api/v1/activities/{monday}"), &token).await.status(), StatusCode::NO_CONTENT);
    let moved = app
        .patch(&format!("/api/v1/activities/{sunday}"), &token, json!({"started_at": "2026-03-04T08:00:00-08:00"}))
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let body = weekly(&app, &token, "?weeks=3").await;
    assert_eq!(week_rows(&body), vec![row("2026-02-23", 0), row("2026-03-02", 1), row("2026-03-09", 1)]);
}
