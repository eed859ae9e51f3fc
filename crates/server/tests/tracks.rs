//! Tracks end to end over HTTP: importing GPX, TCX and FIT files (gzipped or not) as durable
//! jobs, the activities they make, reading them back (streams, export, the original file) and
//! privacy zones — on SQLite with the disk store and on PostgreSQL with S3 (s3s-fs).

mod common;

use std::io::Write;
use std::time::Duration;

use common::{TestApp, error_code, error_message};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use stride_repository::{Backend, S3TestServer};
use stride_tracks::testing::{FitMessage, fit_file, gpx_file, synthetic_run};
use stride_tracks::{Point, Streams, Summary, read};

/// 2026-06-01T21:30:00Z: 06:30 on 2 June in Tokyo, still 1 June in London.
const TOKYO_MORNING: i64 = 1_780_349_400;
const TOKYO: (f64, f64) = (35.6812, 139.7671);

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn form(files: &[(&str, Vec<u8>)], fields: &[(&str, &str)]) -> Form {
    let form = fields.iter().fold(Form::new(), |form, (k, v)| form.text(k.to_string(), v.to_string()));
    files.iter().fold(form, |form, (name, bytes)| {
        form.part(
            "file",
            Part::bytes(bytes.clone()).file_name(name.to_string()).mime_str("application/octet-stream").unwrap(),
        )
    })
}

async fn post_import(app: &TestApp, token: &str, form: Form, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/api/v1/imports")).bearer_auth(token).multipart(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// Polls the import until it is no longer queued or running (30 s at most).
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    let within = Duration::from_secs(30);
    common::import_until(app, token, id, within, |import| {
        !matches!(import["state"].as_str(), Some("queued" | "running"))
    })
    .await
}

async fn import_files(
    app: &TestApp,
    token: &str,
    files: &[(&str, Vec<u8>)],
    fields: &[(&str, &str)],
) -> (Value, Vec<Value>) {
    let response = post_import(app, token, form(files, fields), None).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", response.text().await.unwrap());
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    let import = finished(app, token, &id).await;
    let items: Value = app.get(&format!("/api/v1/imports/{id}/items"), token).await.json().await.unwrap();
    let items = items["items"].as_array().unwrap_or_else(|| panic!("no items: {items}")).clone();
    (import, items)
}

fn tokyo_run() -> Vec<Point> {
    synthetic_run(1200, TOKYO, TOKYO_MORNING)
}

async fn the_import_lifecycle(app: &TestApp) {
    let alice = app.register_in("alice", "Europe/London").await;
    let points = tokyo_run();
    let gpx = gpx_file(&points, Some("Imperial \u{202e}Palace loop"), Some("running"));
    let expected = Summary::compute(&read(gpx.as_bytes()).unwrap().points).unwrap();
    let fit = fit_file(
        &[FitMessage::Session { sport: 2 }]
            .into_iter()
            .chain(
                points
                    .iter()
                    .map(|p| FitMessage::Record(Point { position: p.position.map(|(a, b)| (a + 0.01, b)), ..*p })),
            )
            .collect::<Vec<_>>(),
    );

    let (import, items) = import_files(
        app,
        &alice,
        &[("palace.gpx.gz", gzip(gpx.as_bytes())), ("ride.fit", fit)],
        &[("visibility", "public")],
    )
    .await;
    assert_eq!(import["state"], "done", "{import}");
    assert_eq!(
        (import["total"].as_u64(), import["imported"].as_u64(), import["failed"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    assert!(import["finished_at"].is_string() && import["error"].is_null());
    assert_eq!(items.iter().map(|i| i["state"].as_str().unwrap()).collect::<Vec<_>>(), ["imported", "imported"]);
    assert_eq!(items[0]["name"], "palace.gpx.gz");
    let run_id = items[0]["activity_id"].as_str().unwrap().to_owned();
    let ride_id = items[1]["activity_id"].as_str().unwrap().to_owned();

    let run: Value = app.get(&format!("/api/v1/activities/{run_id}"), &alice).await.json().await.unwrap();
    assert_eq!(run["source"], "gpx");
    assert_eq!(run["sport"], "run");
    assert_eq!(run["visibility"], "public");
    assert_eq!(run["title"], "Imperial Palace loop", "the bidirectional override is removed");
    // Tokyo's offset at the first position, whatever the user's home zone.
    assert_eq!(run["started_at"], "2026-06-02T06:30:00+09:00");
    assert_eq!(run["local_date"], "2026-06-02");
    let track = &run["track"];
    assert_eq!(track["points"], 1200);
    assert_eq!(run["duration_s"].as_i64(), Some(expected.moving_s));
    assert_eq!(track["moving_s"].as_i64(), Some(expected.moving_s));
    assert_eq!(track["elapsed_s"], 1199);
    assert!((run["distance_m"].as_f64().unwrap() - expected.distance_m).abs() < 1e-6);
    assert_eq!(track["elevation_gain_m"].as_f64(), expected.elevation_gain_m);
    assert_eq!(track["avg_hr"].as_u64(), expected.avg_hr.map(u64::from));
    assert_eq!(track["splits"].as_array().unwrap().len(), expected.splits.len());
    assert!(track["polyline"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(track["polyline_tolerance_m"], 5.0);
    assert_eq!(run["start_latlng"], json!([TOKYO.0 + 0.0, TOKYO.1 + 0.0056]));
    let ride: Value = app.get(&format!("/api/v1/activities/{ride_id}"), &alice).await.json().await.unwrap();
    assert_eq!((ride["source"].as_str(), ride["sport"].as_str()), (Some("fit"), Some("ride")));

    // Streams: every key the track has, at three resolutions; unknown keys are refused.
    let streams: Value = app.get(&format!("/api/v1/activities/{run_id}/streams"), &alice).await.json().await.unwrap();
    let keys: Vec<&str> = streams.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for key in ["time", "latlng", "altitude", "distance", "heartrate"] {
        assert_eq!(streams[key].as_array().unwrap().len(), 1200, "{key}");
    }
    assert_eq!(streams["time"][1199], 1199.0);
    assert!((streams["distance"][1199].as_f64().unwrap() - expected.distance_m).abs() < 1e-6);
    let low: Value = app
        .get(&format!("/api/v1/activities/{run_id}/streams?keys=time,cadence&resolution=low"), &alice)
        .await
        .json()
        .await
        .unwrap();
    // k = ⌈1200 / 100⌉ = 12: indices 0, 12, …, 1188 and the last, 1199; no cadence at all.
    assert_eq!(low.as_object().unwrap().len(), 1);
    assert_eq!(low["time"].as_array().unwrap().len(), 101);
    assert_eq!(low["time"][100], 1199.0);
    let unknown = app.get(&format!("/api/v1/activities/{run_id}/streams?keys=time,speed"), &alice).await;
    assert_eq!(error_code(unknown, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input");
    for path in [format!("/api/v1/activities/{run_id}/streams?extra=1"), "/api/v1/imports?extra=1".to_owned()] {
        assert_eq!(
            app.get(&path, &alice).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: unknown parameters"
        );
    }

    // The export re-imports to the same figures.
    let export = app.get(&format!("/api/v1/activities/{run_id}/export.gpx"), &alice).await;
    assert_eq!(export.status(), StatusCode::OK);
    assert_eq!(export.headers()["content-type"], "application/gpx+xml");
    let again = Summary::compute(&read(&export.bytes().await.unwrap()).unwrap().points).unwrap();
    assert!((again.distance_m - expected.distance_m).abs() < 0.01);
    assert_eq!((again.moving_s, again.elevation_gain_m), (expected.moving_s, expected.elevation_gain_m));

    // The original, as sent, to its owner alone.
    let original = app.get(&format!("/api/v1/activities/{run_id}/file"), &alice).await;
    assert_eq!(original.status(), StatusCode::OK);
    assert_eq!(original.bytes().await.unwrap().to_vec(), gzip(gpx.as_bytes()));
    let (bob, _) = app.register("bob").await;
    assert_eq!(app.get(&format!("/api/v1/activities/{run_id}/file"), &bob).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/activities/{run_id}/streams"), &bob).await.status(), StatusCode::OK);

    // The same bytes again (plain this time): a duplicate of the first, nothing new.
    let (again, items) = import_files(app, &alice, &[("same.gpx", gpx.clone().into_bytes())], &[]).await;
    assert_eq!((again["duplicate"].as_u64(), again["imported"].as_u64()), (Some(1), Some(0)));
    assert_eq!(items[0]["state"], "duplicate");
    assert_eq!(items[0]["activity_id"].as_str(), Some(run_id.as_str()));

    // A track decides distance, moving time and start; the rest may change.
    let refused = app.patch(&format!("/api/v1/activities/{run_id}"), &alice, json!({"distance_m": 1.0})).await;
    assert_eq!(error_code(refused, StatusCode::UNPROCESSABLE_ENTITY).await, "track_owned");
    let described =
        app.patch(&format!("/api/v1/activities/{run_id}"), &alice, json!({"description": "hot\nday"})).await;
    let described: Value = described.json().await.unwrap();
    assert_eq!(described["description"], "hot\nday");

    // Deleting the activity forgets the hash: the file imports again.
    assert_eq!(app.delete(&format!("/api/v1/activities/{run_id}"), &alice).await.status(), StatusCode::NO_CONTENT);
    let (third, _) = import_files(app, &alice, &[("same.gpx", gpx.into_bytes())], &[]).await;
    assert_eq!(third["imported"], 1);
}

#[tokio::test]
async fn files_import_as_activities_on_sqlite_and_disk() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    the_import_lifecycle(&app).await;
}

#[tokio::test]
async fn files_import_as_activities_on_postgres_and_s3() {
    let s3 = S3TestServer::start();
    let app = TestApp::spawn_with(Backend::Postgres, |config| common::use_s3(config, &s3)).await;
    the_import_lifecycle(&app).await;
}

stride_repository::each_backend!(
    backend: bad_files_fail_as_items_and_bad_requests_are_refused,
    privacy_zones_hide_points_from_everyone_but_the_owner,
    keys_replay_three_imports_under_way_are_enough_and_cancel_stops_them,
);

async fn bad_files_fail_as_items_and_bad_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.upload_max_file_bytes = 300_000).await;
    let (alice, _) = app.register("alice").await;
    let good = gpx_file(&synthetic_run(30, (46.05, 14.5), TOKYO_MORNING), None, None);
    let doctype =
        format!("<?xml version=\"1.0\"?><!DOCTYPE gpx [<!ENTITY x \"y\">]>{}", &good[good.find("<gpx").unwrap()..]);
    let one_point = gpx_file(&synthetic_run(1, (46.05, 14.5), TOKYO_MORNING), None, None);
    let fit = fit_file(
        &synthetic_run(20, (46.05, 14.5), TOKYO_MORNING).into_iter().map(FitMessage::Record).collect::<Vec<_>>(),
    );
    let files = [
        ("doctype.gpx", doctype.into_bytes()),
        ("one.gpx", one_point.into_bytes()),
        ("cut.fit", fit[..fit.len() - 20].to_vec()),
        ("good.gpx", good.into_bytes()),
    ];
    let (import, items) = import_files(&app, &alice, &files, &[("sport", "walk")]).await;
    assert_eq!(import["state"], "done");
    assert_eq!((import["failed"].as_u64(), import["imported"].as_u64()), (Some(3), Some(1)));
    let codes: Vec<&str> = items.iter().map(|i| i["error"]["code"].as_str().unwrap_or("-")).collect();
    assert_eq!(codes, ["invalid_file", "no_track", "invalid_file", "-"]);
    assert!(items[0]["error"]["message"].as_str().unwrap().contains("DOCTYPE"));
    let activity: Value = app
        .get(&format!("/api/v1/activities/{}", items[3]["activity_id"].as_str().unwrap()), &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(activity["sport"], "walk", "the form's sport, the file naming none");
    assert_eq!(activity["title"], "Walk on 2026-06-01", "Ljubljana's date: 23:30 on 1 June");
    let listed: Value = app.get("/api/v1/activities", &alice).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "failed items store nothing");

    let refused = post_import(&app, &alice, form(&[("notes.txt", b"hello".to_vec())], &[]), None).await;
    assert!(error_message(refused, StatusCode::UNSUPPORTED_MEDIA_TYPE).await.contains("notes.txt"));
    let none = post_import(&app, &alice, form(&[], &[("sport", "run")]), None).await;
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<(String, Vec<u8>)> = (0..21).map(|i| (format!("{i}.gpx"), b"<gpx/>".to_vec())).collect();
    let many: Vec<(&str, Vec<u8>)> = many.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    assert_eq!(post_import(&app, &alice, form(&many, &[]), None).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let big = post_import(&app, &alice, form(&[("big.gpx", vec![b' '; 300_001])], &[]), None).await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bad_sport =
        post_import(&app, &alice, form(&[("a.gpx", b"<gpx/>".to_vec())], &[("sport", "curling")]), None).await;
    assert_eq!(bad_sport.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let imports: Value = app.get("/api/v1/imports", &alice).await.json().await.unwrap();
    assert_eq!(imports["items"].as_array().unwrap().len(), 1, "refused requests record nothing");
    assert_eq!(
        app.get("/api/v1/imports/00000000-0000-0000-0000-000000000000", &alice).await.status(),
        StatusCode::NOT_FOUND
    );
    let (bob, _) = app.register("bob").await;
    let theirs = format!("/api/v1/imports/{}", import["id"].as_str().unwrap());
    assert_eq!(app.get(&theirs, &bob).await.status(), StatusCode::NOT_FOUND);
}

async fn privacy_zones_hide_points_from_everyone_but_the_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.register_in("alice", "Asia/Tokyo").await;
    let (bob, _) = app.register("bob").await;
    let points = tokyo_run();
    let gpx = gpx_file(&points, Some("home run"), None);
    let (_, items) = import_files(&app, &alice, &[("run.gpx", gpx.into_bytes())], &[("visibility", "public")]).await;
    let id = items[0]["activity_id"].as_str().unwrap().to_owned();
    let seen_before: Value = app.get(&format!("/api/v1/activities/{id}"), &bob).await.json().await.unwrap();

    let zone = app
        .post(
            "/api/v1/me/privacy-zones",
            Some(&alice),
            json!({"lat": TOKYO.0, "lon": TOKYO.1 + 0.0056, "radius_m": 300}),
        )
        .await;
    assert_eq!(zone.status(), StatusCode::CREATED);
    let zone: Value = zone.json().await.unwrap();
    let streams = Streams::from_points(points.clone());
    let zones = [stride_tracks::Zone { lat: TOKYO.0, lon: TOKYO.1 + 0.0056, radius_m: 300.0 }];
    let hidden = points.iter().filter(|p| !stride_tracks::outside_zones(p.position, &zones)).count();
    assert!(hidden > 10 && hidden < 1200, "{hidden} points inside the zone");

    let theirs: Value = app.get(&format!("/api/v1/activities/{id}/streams"), &bob).await.json().await.unwrap();
    assert_eq!(theirs["latlng"].as_array().unwrap().len(), 1200 - hidden);
    assert_eq!(theirs["time"].as_array().unwrap().len(), 1200 - hidden, "every key of a hidden index goes");
    let mine: Value = app.get(&format!("/api/v1/activities/{id}/streams"), &alice).await.json().await.unwrap();
    assert_eq!(mine["latlng"].as_array().unwrap().len(), 1200);
    let seen: Value = app.get(&format!("/api/v1/activities/{id}"), &bob).await.json().await.unwrap();
    let visible = streams.visible(&zones);
    let route = stride_tracks::route(&visible.positions()).unwrap();
    assert_eq!(seen["track"]["polyline"].as_str(), Some(route.polyline.as_str()));
    assert_ne!(seen["track"]["polyline"], seen_before["track"]["polyline"]);
    assert_eq!(seen["track"]["distance_m"], seen_before["track"]["distance_m"], "totals stay");
    assert!(seen["start_latlng"].is_null());
    let exported = app.get(&format!("/api/v1/activities/{id}/export.gpx"), &bob).await.text().await.unwrap();
    assert_eq!(exported.matches("<trkpt").count(), 1200 - hidden);
    let feed: Value = app
        .get(&format!("/api/v1/users/{}/activities", seen["user_id"].as_str().unwrap()), &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["items"][0]["track"]["polyline"].as_str(), Some(route.polyline.as_str()));

    for (body, status) in [
        (json!({"lat": 1, "lon": 1, "radius_m": 199}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"lat": 91, "lon": 1, "radius_m": 500}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(app.post("/api/v1/me/privacy-zones", Some(&alice), body).await.status(), status);
    }
    for i in 0..9 {
        let added =
            app.post("/api/v1/me/privacy-zones", Some(&alice), json!({"lat": i, "lon": 0, "radius_m": 2000})).await;
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    let eleventh =
        app.post("/api/v1/me/privacy-zones", Some(&alice), json!({"lat": 50, "lon": 0, "radius_m": 200})).await;
    assert_eq!(error_code(eleventh, StatusCode::CONFLICT).await, "limit_reached");
    let listed: Value = app.get("/api/v1/me/privacy-zones", &alice).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 10);
    let path = format!("/api/v1/me/privacy-zones/{}", zone["id"].as_str().unwrap());
    assert_eq!(app.delete(&path, &bob).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &alice).await.status(), StatusCode::NO_CONTENT);
    let after: Value = app.get(&format!("/api/v1/activities/{id}/streams"), &bob).await.json().await.unwrap();
    assert_eq!(after["latlng"].as_array().unwrap().len(), 1200, "a removed zone applies on the next request");
}

/// Three imports of a user queued (as a busy server would hold them: no job runs them).
async fn three_waiting_imports<S: stride_repository::Store>(app: &TestApp, owner: &str) -> Vec<String> {
    use stride_repository::{ImportRepo, UnitOfWork};
    let store: S = app.db.store().await;
    let owner: stride_domain::UserId = owner.parse().unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let import = stride_domain::Import {
            id: stride_domain::ImportId::new(),
            user_id: owner,
            state: stride_domain::ImportState::Queued,
            sport: None,
            visibility: "friends".into(),
            total: Some(0),
            imported: 0,
            duplicate: 0,
            failed: 0,
            cancelled: 0,
            error: None,
            created_at: chrono::Utc::now(),
            finished_at: None,
            archive_key: None,
            rate_per_s: None,
        };
        let mut uow = store.write(stride_repository::testing::deadline()).await.unwrap();
        uow.insert_import(&import, &[]).await.unwrap();
        uow.commit().await.unwrap();
        ids.push(import.id.to_string());
    }
    store.close().await;
    ids
}

async fn keys_replay_three_imports_under_way_are_enough_and_cancel_stops_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, user) = app.register("alice").await;
    let gpx = gpx_file(&synthetic_run(50, (46.05, 14.5), TOKYO_MORNING), None, None).into_bytes();

    // The same key answers the first import and imports nothing again.
    let first = post_import(&app, &alice, form(&[("a.gpx", gpx.clone())], &[]), Some("import-1")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    let done = finished(&app, &alice, &id).await;
    assert_eq!(done["imported"], 1);
    let again = post_import(&app, &alice, form(&[("a.gpx", gpx.clone())], &[]), Some("import-1")).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["state"], "done", "the first import as it is now");
    let listed: Value = app.get("/api/v1/imports", &alice).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Cancelling a finished import changes nothing.
    let cancelled = app.post(&format!("/api/v1/imports/{id}/cancel"), Some(&alice), json!({})).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!((cancelled["state"].as_str(), cancelled["imported"].as_u64()), (Some("done"), Some(1)));

    // Three imports queued or running: a fourth is 429 and stores nothing; a cancel makes room.
    let waiting = match backend {
        Backend::Sqlite => {
            three_waiting_imports::<stride_repository::SqliteStore>(&app, user["id"].as_str().unwrap()).await
        }
        Backend::Postgres => {
            three_waiting_imports::<stride_repository::PgStore>(&app, user["id"].as_str().unwrap()).await
        }
    };
    let other = gpx_file(&synthetic_run(60, (46.05, 14.5), TOKYO_MORNING), None, None).into_bytes();
    let refused = post_import(&app, &alice, form(&[("b.gpx", other.clone())], &[]), None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");
    let stopped: Value = app
        .post(&format!("/api/v1/imports/{}/cancel", waiting[0]), Some(&alice), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["state"], "cancelled");
    assert!(stopped["finished_at"].is_string());
    let (bob, _) = app.register("bob").await;
    let theirs = app.post(&format!("/api/v1/imports/{}/cancel", waiting[1]), Some(&bob), json!({})).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "only the owner's");
    let (room, items) = import_files(&app, &alice, &[("b.gpx", other)], &[]).await;
    assert_eq!((room["state"].as_str(), items.len()), (Some("done"), 1));
}
