//! Archives end to end over HTTP: a Strava-layout export (CSV with quoted commas and newlines
//! and repeated headers, `.fit.gz`, `.gpx.gz`, `.tcx`, media, a row without a file, an unsafe
//! entry) imported as one job, every resulting activity and photo checked; the same archive
//! again imports nothing new; archives that cannot be read fail as a whole. On SQLite with the
//! disk store and on PostgreSQL with S3 (s3s-fs).

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::{TestApp, error_message};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use stride_repository::{Backend, S3TestServer};
use stride_tracks::testing::{FitMessage, ZipEntry, fit_file, gpx_file, gzip, synthetic_run, tcx_file, zip_file};

/// 2026-03-01T07:30:00Z, near Ljubljana.
const START: i64 = 1_772_350_200;
const LJUBLJANA: (f64, f64) = (46.0569, 14.5058);

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

const CSV: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,\
Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,Athlete Weight,\
Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed,Media\n\
1001,\"Mar 1, 2026, 7:30:00 AM\",\"Morning run, easy\",Trail Run,\"Felt good,\nthen rain\",1200,3.5,160,,false,,,\
activities/1001.fit.gz,,,1200.0,1180.0,3512.5,4.0,media/a.jpg|media/not-a-photo.jpg|media/gone.jpg\n\
1002,\"Mar 2, 2026, 6:00:00 PM\",Evening ride,Gravel Ride,,600,2.1,,,false,,,activities/1002.gpx.gz,,,600.0,590.0,2100.0,9.0,\n\
1003,\"Mar 3, 2026, 12:15:30 PM\",Pool,Swim,\"Lanes, 50 m\",1800,1.5,,,false,,,,,,1800.0,1800.0,1500.0,1.0,media/b.jpg\n\
1004,\"Mar 4, 2026, 8:00:00 AM\",Hike up,Hike,,900,1.0,,,false,,,activities/1004.tcx,,,900.0,900.0,1000.0,2.0,\n\
1005,\"Mar 5, 2026, 8:00:00 AM\",Lost one,Run,,900,1.0,,,false,,,activities/missing.gpx,,,900.0,900.0,1000.0,2.0,\n";

fn strava_export() -> Vec<u8> {
    let run = synthetic_run(300, LJUBLJANA, START);
    let fit = fit_file(&run.iter().copied().map(FitMessage::Record).collect::<Vec<_>>());
    let ride = gpx_file(&synthetic_run(200, (46.1, 14.6), START + 86_400 + 37_800), None, Some("cycling"));
    let hike = tcx_file(&synthetic_run(150, (46.2, 14.4), START + 3 * 86_400 + 1_800), "Other");
    let (photo_a, photo_b) = (jpeg(640, 480), jpeg(300, 200));
    let extra = gpx_file(&synthetic_run(100, (46.3, 14.3), START + 5 * 86_400), Some("Unlisted"), None);
    zip_file(&[
        ZipEntry::File("activities.csv", CSV.as_bytes()),
        ZipEntry::File("profile.csv", b"Athlete ID,Email\n1,a@b.c\n"),
        ZipEntry::File("activities/1001.fit.gz", &gzip(&fit)),
        ZipEntry::File("activities/1002.gpx.gz", &gzip(ride.as_bytes())),
        ZipEntry::File("activities/1004.tcx", hike.as_bytes()),
        ZipEntry::File("activities/2000.gpx", extra.as_bytes()),
        ZipEntry::File("media/a.jpg", &photo_a),
        ZipEntry::File("media/not-a-photo.jpg", b"plain text"),
        ZipEntry::File("media/b.jpg", &photo_b),
        ZipEntry::File("__MACOSX/activities/._1001.fit.gz", b"fork"),
        ZipEntry::File("../outside.gpx", extra.as_bytes()),
    ])
}

fn archive_form(name: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .text("visibility", "public")
        .part("file", Part::bytes(bytes).file_name(name.to_owned()).mime_str("application/zip").unwrap())
}

async fn post(app: &TestApp, token: &str, form: Form) -> reqwest::Response {
    app.client.post(app.url("/api/v1/imports")).bearer_auth(token).multipart(form).send().await.unwrap()
}

/// Polls the import until it is no longer queued or running (60 s at most).
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    let within = Duration::from_secs(60);
    common::import_until(app, token, id, within, |import| {
        !matches!(import["state"].as_str(), Some("queued" | "running"))
    })
    .await
}

async fn import_archive(app: &TestApp, token: &str, bytes: Vec<u8>) -> (Value, Vec<Value>) {
    let response = post(app, token, archive_form("export.zip", bytes)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", response.text().await.unwrap());
    let accepted: Value = response.json().await.unwrap();
    assert!(accepted["rate_per_s"].is_null() && accepted["eta_s"].is_null());
    let id = accepted["id"].as_str().unwrap().to_owned();
    let import = finished(app, token, &id).await;
    // Paged two at a time, as a client would.
    let mut items = Vec::new();
    let mut path = format!("/api/v1/imports/{id}/items?limit=2");
    loop {
        let page: Value = app.get(&path, token).await.json().await.unwrap();
        items.extend(page["items"].as_array().unwrap_or_else(|| panic!("no items: {page}")).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/imports/{id}/items?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    (import, items)
}

async fn activity(app: &TestApp, token: &str, item: &Value) -> Value {
    let id = item["activity_id"].as_str().unwrap_or_else(|| panic!("no activity: {item}"));
    app.get(&format!("/api/v1/activities/{id}"), token).await.json().await.unwrap()
}

async fn a_strava_export_imports_every_row(app: &TestApp) {
    let alice = app.register_in("alice", "Asia/Tokyo").await;
    let (import, items) = import_archive(app, &alice, strava_export()).await;
    assert_eq!(import["state"], "done", "{import}");
    assert_eq!(import["total"], 7, "5 rows, the unnamed track, the unsafe entry: {items:?}");
    assert_eq!((import["imported"].as_u64(), import["failed"].as_u64()), (Some(5), Some(2)), "{import}");
    assert!(import["rate_per_s"].is_null() && import["eta_s"].is_null(), "only while running: {import}");
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "activities/1001.fit.gz",
            "activities/1002.gpx.gz",
            "activities.csv row 3 (Strava activity 1003)",
            "activities/1004.tcx",
            "activities/missing.gpx",
            "activities/2000.gpx",
            "../outside.gpx"
        ]
    );
    let states: Vec<&str> = items.iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["imported", "imported", "imported", "imported", "failed", "imported", "failed"]);
    assert_eq!(items[4]["error"]["code"], "missing_file");
    assert_eq!(items[6]["error"]["code"], "unsafe_entry");

    let run = activity(app, &alice, &items[0]).await;
    assert_eq!((run["sport"].as_str(), run["title"].as_str()), (Some("run"), Some("Morning run, easy")));
    assert_eq!(run["description"], "Felt good,\nthen rain");
    assert_eq!((run["source"].as_str(), run["visibility"].as_str()), (Some("fit"), Some("public")));
    assert_eq!(run["photo_count"], 1, "a.jpg; the text file and the missing one are warnings");
    let warnings: Vec<&str> =
        items[0]["warnings"].as_array().unwrap().iter().map(|w| w["code"].as_str().unwrap()).collect();
    assert_eq!(warnings, ["unsupported_photo", "missing_file"], "{}", items[0]);
    let photos: Value = app
        .get(&format!("/api/v1/activities/{}/photos", run["id"].as_str().unwrap()), &alice)
        .await
        .json()
        .await
        .unwrap();
    let photo = &photos["items"][0];
    assert_eq!((photo["width"].as_u64(), photo["height"].as_u64()), (Some(640), Some(480)), "{photos}");

    let ride = activity(app, &alice, &items[1]).await;
    assert_eq!(
        (ride["sport"].as_str(), ride["title"].as_str(), ride["source"].as_str()),
        (Some("ride"), Some("Evening ride"), Some("gpx"))
    );
    assert!(ride["description"].is_null());

    let swim = activity(app, &alice, &items[2]).await;
    assert_eq!((swim["sport"].as_str(), swim["title"].as_str()), (Some("swim"), Some("Pool")));
    assert_eq!(swim["source"], "manual");
    assert_eq!(swim["started_at"], "2026-03-03T12:15:30+00:00", "UTC, as the row gives it");
    assert_eq!((swim["duration_s"].as_u64(), swim["distance_m"].as_f64()), (Some(1800), Some(1500.0)));
    assert_eq!(swim["description"], "Lanes, 50 m");
    assert_eq!(swim["photo_count"], 1);

    let hike = activity(app, &alice, &items[3]).await;
    assert_eq!((hike["sport"].as_str(), hike["source"].as_str()), (Some("hike"), Some("tcx")));
    let extra = activity(app, &alice, &items[5]).await;
    assert_eq!((extra["title"].as_str(), extra["sport"].as_str()), (Some("Unlisted"), Some("other")));

    // The same export again: every row is a duplicate of what it made, nothing new.
    let (again, again_items) = import_archive(app, &alice, strava_export()).await;
    assert_eq!(
        (again["imported"].as_u64(), again["duplicate"].as_u64(), again["failed"].as_u64()),
        (Some(0), Some(5), Some(2)),
        "{again}"
    );
    for (first, second) in items.iter().zip(&again_items).filter(|(first, _)| first["state"] == "imported") {
        assert_eq!(second["state"], "duplicate");
        assert_eq!(second["activity_id"], first["activity_id"]);
    }
    let listed: Value = app.get("/api/v1/activities?limit=50", &alice).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_strava_export_imports_on_sqlite_and_disk() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    a_strava_export_imports_every_row(&app).await;
}

#[tokio::test]
async fn a_strava_export_imports_on_postgres_and_s3() {
    let s3 = S3TestServer::start();
    let app = TestApp::spawn_with(Backend::Postgres, |config| common::use_s3(config, &s3)).await;
    a_strava_export_imports_every_row(&app).await;
}

stride_repository::each_backend!(
    backend: archives_that_cannot_be_imported_are_refused_or_fail_whole,
    cancelling_an_archive_stops_intake_and_keeps_what_is_done,
);

async fn archives_that_cannot_be_imported_are_refused_or_fail_whole(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.import_max_archive_bytes = 200_000).await;
    let (alice, _) = app.register("alice").await;

    let mut damaged = b"PK\x03\x04".to_vec();
    damaged.extend(std::iter::repeat_n(7u8, 1000));
    let response = post(&app, &alice, archive_form("damaged.zip", damaged)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "stored before it is read");
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let import = finished(&app, &alice, &id).await;
    assert_eq!(
        (import["state"].as_str(), import["error"]["code"].as_str()),
        (Some("failed"), Some("invalid_archive")),
        "{import}"
    );
    assert_eq!(import["total"], Value::Null);

    // A zip bomb: an entry that inflates past 100 MiB from a few hundred kilobytes.
    let zeros = vec![0u8; 101 << 20];
    let bomb = zip_file(&[ZipEntry::File("bomb.gpx", &zeros)]);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    let response = post(&app, &alice, archive_form("bomb.zip", bomb)).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let import = finished(&app, &alice, &id).await;
    assert_eq!(import["state"], "done");
    let items: Value = app.get(&format!("/api/v1/imports/{id}/items"), &alice).await.json().await.unwrap();
    assert_eq!(items["items"][0]["error"]["code"], "too_large", "{items}");

    let large = post(
        &app,
        &alice,
        archive_form("large.zip", {
            let mut bytes = b"PK\x03\x04".to_vec();
            bytes.resize(200_001, 1);
            bytes
        }),
    )
    .await;
    assert!(error_message(large, StatusCode::PAYLOAD_TOO_LARGE).await.contains("STRIDE_IMPORT_MAX_ARCHIVE_BYTES"));
    let gpx = gpx_file(&synthetic_run(10, LJUBLJANA, START), None, None).into_bytes();
    let mixed = archive_form("a.zip", zip_file(&[ZipEntry::File("a.gpx", &gpx)]))
        .part("file", Part::bytes(gpx).file_name("b.gpx").mime_str("application/gpx+xml").unwrap());
    assert_eq!(post(&app, &alice, mixed).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let imports: Value = app.get("/api/v1/imports", &alice).await.json().await.unwrap();
    assert_eq!(imports["items"].as_array().unwrap().len(), 2, "refused requests record nothing");
}

async fn cancelling_an_archive_stops_intake_and_keeps_what_is_done(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (alice, _) = app.register("alice").await;
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let points = synthetic_run(6_000, (46.0 + f64::from(i) * 0.01, 14.5), START + i64::from(i) * 86_400);
            (format!("runs/{i}.gpx.gz"), gzip(gpx_file(&points, None, None).as_bytes()))
        })
        .collect();
    let entries: Vec<ZipEntry<'_>> = files.iter().map(|(name, bytes)| ZipEntry::File(name, bytes)).collect();
    let response = post(&app, &alice, archive_form("runs.zip", zip_file(&entries))).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let import: Value = app.get(&format!("/api/v1/imports/{id}"), &alice).await.json().await.unwrap();
        if import["imported"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < give_up && import["state"] != "done", "{import}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled: Value = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/cancel")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    // Items in flight at the cancel find themselves cancelled and keep nothing: once the job
    // has let go of the import, every item is settled and each imported one has its activity.
    let give_up = Instant::now() + Duration::from_secs(60);
    let (import, items) = loop {
        let import: Value = app.get(&format!("/api/v1/imports/{id}"), &alice).await.json().await.unwrap();
        let items: Value =
            app.get(&format!("/api/v1/imports/{id}/items?limit=100"), &alice).await.json().await.unwrap();
        let items = items["items"].as_array().unwrap().clone();
        let listed: Value = app.get("/api/v1/activities?limit=100", &alice).await.json().await.unwrap();
        let activities = listed["items"].as_array().unwrap().len() as u64;
        if activities == import["imported"].as_u64().unwrap() && items.iter().all(|i| i["state"] != "queued") {
            break (import, items);
        }
        assert!(Instant::now() < give_up, "still settling: {import}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(import["state"], "cancelled");
    let (imported, cancelled) = (import["imported"].as_u64().unwrap(), import["cancelled"].as_u64().unwrap());
    assert!(imported >= 1 && cancelled >= 1 && imported + cancelled == 40, "{import}");
    assert_eq!(items.iter().filter(|i| i["state"] == "imported").count() as u64, imported);
    assert!(items.iter().filter(|i| i["state"] == "cancelled").all(|i| i["activity_id"].is_null()));
}
