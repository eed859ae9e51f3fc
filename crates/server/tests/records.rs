//! Best efforts, records and totals by period end to end over HTTP, on SQLite with the disk
//! store and on PostgreSQL with S3 (s3s-fs): efforts as the tracks' reference computes them,
//! records ranked and promoted as activities change sport, visibility or go, what a friend and
//! a stranger see, monthly and yearly totals; and, under concurrent imports, sport changes and
//! deletes, records that equal a recomputation from every remaining track's streams.

mod common;

use std::time::Duration;

use common::{TestApp, error_code};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use stride_repository::{Backend, S3TestServer};
use stride_tracks::efforts::{Profile, RIDE_DISTANCES_M, RUN_DISTANCES_M, best_effort_by_search};
use stride_tracks::testing::{gpx_file, synthetic_run};

/// 2026-03-02T08:00:00Z.
const MORNING: i64 = 1_772_438_400;

/// A run of `n` points, a point every `step` seconds (smaller: faster), starting `day` days
/// after [`MORNING`], somewhere of its own (so every file differs).
fn run_gpx(n: usize, step: f64, day: i64, seed: u32) -> Vec<u8> {
    let start = MORNING + day * 86_400;
    let mut points = synthetic_run(n, (46.0 + f64::from(seed) * 0.001, 14.5), start);
    for (i, point) in points.iter_mut().enumerate() {
        point.time_ns = Some(start * 1_000_000_000 + (i as f64 * step * 1e9).round() as i64);
    }
    gpx_file(&points, Some(&format!("run {seed}")), Some("running")).into_bytes()
}

async fn import(app: &TestApp, token: &str, gpx: Vec<u8>) -> String {
    let part = Part::bytes(gpx).file_name("run.gpx").mime_str("application/gpx+xml").unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/imports"))
        .bearer_auth(token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let done = common::import_until(app, token, &id, Duration::from_secs(60), |i| i["state"] == "done").await;
    assert_eq!(done["imported"], 1, "{done}");
    let items: Value = app.get(&format!("/api/v1/imports/{id}/items"), token).await.json().await.unwrap();
    items["items"][0]["activity_id"].as_str().unwrap().to_owned()
}

/// The efforts of an activity recomputed from its streams by the plain reference, in tenths
/// of a second, for `distances`.
async fn reference_efforts(app: &TestApp, token: &str, id: &str, distances: &[f64]) -> Vec<(f64, i64, i64)> {
    let streams: Value =
        app.get(&format!("/api/v1/activities/{id}/streams?keys=time,distance"), token).await.json().await.unwrap();
    let samples: Vec<(f64, f64)> = streams["time"]
        .as_array()
        .unwrap()
        .iter()
        .zip(streams["distance"].as_array().unwrap())
        .filter_map(|(t, d)| Some((t.as_f64()?, d.as_f64()?)))
        .collect();
    let profile = Profile::from_samples(&samples);
    distances
        .iter()
        .filter_map(|&length| {
            let e = best_effort_by_search(&profile, length)?;
            Some((length, (e.elapsed_s * 10.0).round() as i64, (e.start_offset_s * 10.0).round() as i64))
        })
        .collect()
}

fn tenths(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 10.0).round() as i64
}

async fn records(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The activity ids of a records body's best three at `distance`.
fn podium(records: &Value, distance: f64) -> Vec<String> {
    records["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["distance_m"].as_f64() == Some(distance))
        .map(|item| {
            item["best"].as_array().unwrap().iter().map(|b| b["activity_id"].as_str().unwrap().to_owned()).collect()
        })
        .unwrap_or_default()
}

async fn efforts_records_and_periods(app: &TestApp) {
    let alice = app.register_in("alice", "UTC").await;
    // Four runs of ~2 km, fastest first by step: 0.7 s, 0.8 s, 0.9 s, 1.0 s a point.
    let mut ids = Vec::new();
    for (seed, step) in [0.7, 0.8, 0.9, 1.0].into_iter().enumerate() {
        ids.push(import(app, &alice, run_gpx(2_400, step, seed as i64, seed as u32)).await);
    }
    // Efforts: what the reference computes from the stored streams, to the tenth.
    let body = records(app, &alice, &format!("/api/v1/activities/{}/best-efforts", ids[0])).await;
    let items = body["items"].as_array().unwrap();
    let expected = reference_efforts(app, &alice, &ids[0], &RUN_DISTANCES_M).await;
    assert!(expected.len() >= 3, "a 2 km run covers 400 m, 1 km and the mile: {expected:?}");
    assert_eq!(items.len(), expected.len(), "{body}");
    for (item, (distance, elapsed, start)) in items.iter().zip(&expected) {
        assert_eq!(item["distance_m"].as_f64().unwrap(), *distance, "{item}");
        assert!((tenths(&item["elapsed_s"]) - elapsed).abs() <= 1, "{item} vs {elapsed}");
        assert!((tenths(&item["start_offset_s"]) - start).abs() <= 1, "{item} vs {start}");
        assert!(tenths(&item["end_offset_s"]) - tenths(&item["start_offset_s"]) - tenths(&item["elapsed_s"]) <= 1);
        assert_eq!(item["rank"], 1, "the fastest run ranks first: {item}");
    }
    let slowest = records(app, &alice, &format!("/api/v1/activities/{}/best-efforts", ids[3])).await;
    assert!(slowest["items"].as_array().unwrap().iter().all(|i| i["rank"].is_null()), "4th of 4: {slowest}");

    // Records: the three fastest, fastest first; longest and biggest climb.
    let mine = records(app, &alice, "/api/v1/me/records?sport=run").await;
    assert_eq!(mine["sport"], "run");
    assert_eq!(podium(&mine, 1000.0), ids[..3].to_vec(), "{mine}");
    assert!(mine["items"].as_array().unwrap().iter().all(|i| i["distance_m"].as_f64().unwrap() <= 2_500.0));
    assert!(mine["longest"]["distance_m"].as_f64().unwrap() > 1_600.0, "{mine}");
    assert!(mine["biggest_climb"]["elevation_gain_m"].as_f64().unwrap() > 0.0, "{mine}");
    assert_eq!(records(app, &alice, "/api/v1/me/records?sport=ride").await["items"], json!([]));

    // Deleting the fastest promotes the fourth; a change of sport moves one out of runs.
    assert_eq!(app.delete(&format!("/api/v1/activities/{}", ids[0]), &alice).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(podium(&records(app, &alice, "/api/v1/me/records?sport=run").await, 1000.0), ids[1..4].to_vec());
    let patched = app.patch(&format!("/api/v1/activities/{}", ids[1]), &alice, json!({"sport": "walk"})).await;
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(podium(&records(app, &alice, "/api/v1/me/records?sport=run").await, 1000.0), ids[2..4].to_vec());
    assert_eq!(podium(&records(app, &alice, "/api/v1/me/records?sport=walk").await, 1000.0), ids[1..2].to_vec());

    // A friend sees only friends' and public activities; a stranger nothing (404).
    let (bob, _) = app.register("bob").await;
    let (carol, _) = app.register("carol").await;
    let alice_id =
        app.get("/api/v1/me", &alice).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let request = app.post("/api/v1/friends/requests", Some(&bob), json!({"username": "alice"})).await;
    assert_eq!(request.status(), StatusCode::CREATED);
    let request_id = request.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let accepted = app.post(&format!("/api/v1/friends/requests/{request_id}/accept"), Some(&alice), json!({})).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let private = app.patch(&format!("/api/v1/activities/{}", ids[2]), &alice, json!({"visibility": "private"})).await;
    assert_eq!(private.status(), StatusCode::OK);
    let seen = records(app, &bob, &format!("/api/v1/users/{alice_id}/records?sport=run")).await;
    assert_eq!(podium(&seen, 1000.0), ids[3..4].to_vec(), "{seen}");
    let effort = records(app, &bob, &format!("/api/v1/activities/{}/best-efforts", ids[3])).await;
    assert_eq!(effort["items"][0]["rank"], 1, "first of what bob may see: {effort}");
    let owner_view = records(app, &alice, &format!("/api/v1/activities/{}/best-efforts", ids[3])).await;
    assert_eq!(owner_view["items"][0]["rank"], 2, "second of alice's own: {owner_view}");
    let stranger = app.get(&format!("/api/v1/users/{alice_id}/records?sport=run"), &carol).await;
    assert_eq!(error_code(stranger, StatusCode::NOT_FOUND).await, "not_found");
    for bad in ["/api/v1/me/records", "/api/v1/me/records?sport=teleport"] {
        assert_eq!(app.get(bad, &alice).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // The pages: the activity marks its place, the dashboard has the records and the chart.
    let client = common::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = common::page_session(&client, app, "alice").await;
    let page = |path: String| {
        let request = client.get(app.url(&path)).header("cookie", &session);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let detail = page(format!("/activities/{}", ids[3])).await;
    assert!(detail.contains("2nd best 1 km"), "{detail}");
    let dashboard = page("/?period=year&records=run".into()).await;
    assert!(dashboard.contains("Totals by year") && dashboard.contains("Records"), "{dashboard}");
    assert!(dashboard.contains(&format!("/activities/{}", ids[3])), "a record links its activity: {dashboard}");

    // A manual activity: no efforts; it counts in its month with no climb.
    let manual = app
        .create_activity(
            &alice,
            json!({"sport": "ride", "started_at": "2026-01-15T10:00:00+00:00",
            "duration_s": 3600, "distance_m": 30000.0, "title": "Ride"}),
        )
        .await;
    let efforts =
        records(app, &alice, &format!("/api/v1/activities/{}/best-efforts", manual["id"].as_str().unwrap())).await;
    assert_eq!(efforts["items"], json!([]));
    let months = records(app, &alice, "/api/v1/me/stats/periods?period=month&count=120").await;
    let periods = months["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 120);
    let by_start = |start: &str| periods.iter().find(|p| p["start"] == start).unwrap_or_else(|| panic!("{start}"));
    assert_eq!(by_start("2026-01-01")["activities"], 1);
    assert_eq!(by_start("2026-01-01")["distance_m"], 30000.0);
    assert_eq!(by_start("2026-01-01")["elevation_gain_m"], 0.0);
    assert_eq!(by_start("2026-03-01")["activities"], 3, "three runs left in March: {months}");
    let all = records(app, &alice, "/api/v1/me/stats/periods?period=&sport=&count=").await;
    assert_eq!(all["periods"].as_array().unwrap().len(), 12, "empty values are the defaults: {all}");
    let rides = records(app, &alice, "/api/v1/me/stats/periods?period=year&sport=ride&count=2").await;
    assert_eq!(rides["periods"][1]["start"].as_str().unwrap()[5..], *"01-01");
    assert_eq!(
        rides["periods"][1]["activities"].as_u64().unwrap() + rides["periods"][0]["activities"].as_u64().unwrap(),
        1
    );
    for bad in ["count=0", "count=121", "period=week", "sport=teleport", "count=x"] {
        let response = app.get(&format!("/api/v1/me/stats/periods?{bad}"), &alice).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn efforts_records_and_periods_on_sqlite_and_disk() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    efforts_records_and_periods(&app).await;
}

#[tokio::test]
async fn efforts_records_and_periods_on_postgres_and_s3() {
    let s3 = S3TestServer::start();
    let app = TestApp::spawn_with(Backend::Postgres, |config| common::use_s3(config, &s3)).await;
    efforts_records_and_periods(&app).await;
}

/// Random imports, sport changes and deletes, many at once; then each sport's records must
/// equal the three best of a recomputation from every remaining activity's streams.
async fn records_equal_a_recomputation_after_concurrent_writes(app: &TestApp) {
    let seed: u64 = std::env::var("STRIDE_RECORDS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("records property: seed {seed} (STRIDE_RECORDS_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let token = app.register_in("racer", "UTC").await;
    // A user may send two uploads at once (429 past it): two at a time.
    let mut first = Vec::new();
    for batch in 0..3u32 {
        first.extend(
            futures::future::join_all((0..2u32).map(|i| {
                let n = batch * 2 + i;
                import(app, &token, run_gpx(1_300, 0.6 + 0.05 * f64::from(n), i64::from(n), 100 + n))
            }))
            .await,
        );
    }
    let mut operations = Vec::new();
    for round in 0..12u32 {
        // Two imports, the rest sport changes and deletes, all at once.
        let op = if round < 2 { 0 } else { rng.random_range(1..3) };
        let target = first[rng.random_range(0..first.len())].clone();
        let sport = ["run", "walk", "ride", "hike"][rng.random_range(0..4)];
        let step = rng.random_range(0.5..1.2);
        operations.push((op, target, sport, step, round));
    }
    let results = futures::future::join_all(operations.into_iter().map(|(op, target, sport, step, round)| {
        let token = token.clone();
        async move {
            match op {
                0 => {
                    import(app, &token, run_gpx(1_300, step, 10 + i64::from(round), 200 + round)).await;
                }
                1 => {
                    let _ = app.patch(&format!("/api/v1/activities/{target}"), &token, json!({"sport": sport})).await;
                }
                _ => {
                    let _ = app.delete(&format!("/api/v1/activities/{target}"), &token).await;
                }
            }
        }
    }))
    .await;
    assert_eq!(results.len(), 12);
    let listed: Value = app.get("/api/v1/activities?limit=100", &token).await.json().await.unwrap();
    let activities = listed["items"].as_array().unwrap().clone();
    for sport in ["run", "walk", "ride", "hike"] {
        let distances: &[f64] = if sport == "ride" { &RIDE_DISTANCES_M } else { &RUN_DISTANCES_M };
        let mut all: Vec<(f64, i64, String, String)> = Vec::new();
        for activity in activities.iter().filter(|a| a["sport"] == sport) {
            let id = activity["id"].as_str().unwrap();
            for (distance, elapsed, _) in reference_efforts(app, &token, id, distances).await {
                all.push((distance, elapsed, activity["started_at"].as_str().unwrap().to_owned(), id.to_owned()));
            }
        }
        let stored = records(app, &token, &format!("/api/v1/me/records?sport={sport}")).await;
        for &distance in distances {
            let mut expected: Vec<&(f64, i64, String, String)> = all.iter().filter(|e| e.0 == distance).collect();
            expected.sort_by(|a, b| (a.1, &a.2, &a.3).cmp(&(b.1, &b.2, &b.3)));
            let times: Vec<i64> = expected.iter().take(3).map(|e| e.1).collect();
            let item = stored["items"].as_array().unwrap().iter().find(|i| i["distance_m"].as_f64() == Some(distance));
            let got: Vec<i64> = item
                .map(|i| i["best"].as_array().unwrap().iter().map(|b| tenths(&b["elapsed_s"])).collect())
                .unwrap_or_default();
            assert_eq!(got.len(), times.len(), "seed {seed}, {sport} {distance} m: {stored}");
            for (g, t) in got.iter().zip(&times) {
                assert!((g - t).abs() <= 1, "seed {seed}, {sport} {distance} m: {got:?} vs {times:?}");
            }
        }
    }
}

#[tokio::test]
async fn records_equal_a_recomputation_on_sqlite() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    records_equal_a_recomputation_after_concurrent_writes(&app).await;
}

#[tokio::test]
async fn records_equal_a_recomputation_on_postgres() {
    let app = TestApp::spawn(Backend::Postgres).await;
    records_equal_a_recomputation_after_concurrent_writes(&app).await;
}

stride_repository::each_backend!(backend: efforts_are_rebuilt_by_the_command_and_by_a_newer_server);

/// Every file under `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walkdir(&path)) } else { files.push(path) }
    }
    files
}

/// Efforts made stale (version 0, none stored) come back as they were: from the stored track
/// by `stride records rebuild`, and by the job a server starting on such a database queues.
async fn efforts_are_rebuilt_by_the_command_and_by_a_newer_server(backend: Backend) {
    use stride_repository::{RecordsRepo, Store, UnitOfWork};
    let db = std::sync::Arc::new(stride_repository::testing::TestDatabase::create(backend).await);
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_sharing(db.clone(), |config| config.data_dir = data.path().to_owned()).await;
    let alice = app.register_in("alice", "UTC").await;
    let id = import(&app, &alice, run_gpx(1_500, 0.8, 0, 7)).await;
    // A second run whose stored points are gone: the rebuild reports it and goes on.
    let lost = import(&app, &alice, run_gpx(1_500, 0.9, 1, 8)).await;
    let points = walkdir(data.path()).into_iter().find(|p| p.ends_with(format!("{lost}.points"))).unwrap();
    std::fs::remove_file(points).unwrap();
    let path = format!("/api/v1/activities/{id}/best-efforts");
    let before = records(&app, &alice, &path).await;
    assert!(!before["items"].as_array().unwrap().is_empty(), "{before}");
    let stale = || async {
        let activity: stride_domain::ActivityId = id.parse().unwrap();
        match backend {
            Backend::Sqlite => {
                let store = db.sqlite_store().await;
                let mut uow = store.write(stride_repository::testing::deadline()).await.unwrap();
                uow.replace_efforts(activity, &[], 0).await.unwrap();
                uow.commit().await.unwrap();
            }
            Backend::Postgres => {
                let store = db.postgres_store().await;
                let mut uow = store.write(stride_repository::testing::deadline()).await.unwrap();
                uow.replace_efforts(activity, &[], 0).await.unwrap();
                uow.commit().await.unwrap();
            }
        }
    };
    stale().await;
    assert_eq!(records(&app, &alice, &path).await["items"], json!([]));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(["records", "rebuild", "--user", "alice"])
        .env("STRIDE_DATABASE_URL", db.url())
        .env("STRIDE_DATA_DIR", data.path())
        .output()
        .expect("run stride records rebuild");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "a track could not be read: {stdout}");
    assert!(stdout.contains("1 activities rebuilt, 1 could not be read"), "{stdout}");
    assert_eq!(records(&app, &alice, &path).await, before);

    stale().await;
    let newer = TestApp::spawn_sharing(db.clone(), |config| config.data_dir = data.path().to_owned()).await;
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while records(&newer, &alice, &path).await != before {
        assert!(std::time::Instant::now() < give_up, "the rebuild job never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
