//! `kill -9` of a `stride` process in the middle of an archive's import: the rate shows while
//! it runs; once the 30 s lease expires another instance plans nothing again (the items were
//! recorded once) and resumes at the items still queued, so every entry is imported exactly
//! once — none twice, none lost.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{StrideProcess, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use stride_repository::Backend;
use stride_repository::testing::TestDatabase;
use stride_tracks::testing::{ZipEntry, gpx_file, gzip, synthetic_run, zip_file};

stride_repository::each_backend!(backend: an_archive_killed_mid_way_resumes_and_imports_every_entry_once);

const ENTRIES: usize = 48;

async fn an_archive_killed_mid_way_resumes_and_imports_every_entry_once(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let blobs = tempfile::tempdir().unwrap();
    let data_dir = blobs.path().to_str().unwrap().to_owned();
    let mut doomed = StrideProcess::start(&db, &[("STRIDE_DATA_DIR", data_dir.as_str())]).await;
    let client = common::http_client();
    let token = doomed.register("doomed_archive").await;
    // Different runs of 8,000 points each, gzipped as Strava stores them: long enough to parse
    // that the kill lands mid-way.
    let files: Vec<(String, Vec<u8>)> = (0..ENTRIES)
        .map(|i| {
            let points = synthetic_run(8_000, (46.0 + i as f64 * 0.01, 14.5), 1_780_349_400 + i as i64 * 86_400);
            (format!("activities/{i}.gpx.gz"), gzip(gpx_file(&points, Some(&format!("run {i}")), None).as_bytes()))
        })
        .collect();
    let entries: Vec<ZipEntry<'_>> = files.iter().map(|(name, bytes)| ZipEntry::File(name, bytes)).collect();
    let form = Form::new().part("file", Part::bytes(zip_file(&entries)).file_name("watch.zip"));
    let response = client.post(doomed.url("/api/v1/imports")).bearer_auth(&token).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
    let at_kill = loop {
        let import: Value = client
            .get(doomed.url(&format!("/api/v1/imports/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Running, with a rate and an ETA recorded: kill it now.
        if import["state"] == "running" && import["rate_per_s"].as_f64().is_some_and(|rate| rate > 0.0) {
            assert_eq!(import["total"], ENTRIES as u64, "{import}");
            assert!(import["eta_s"].as_f64().is_some(), "{import}");
            doomed.child.kill().expect("kill -9");
            doomed.child.wait().unwrap();
            break import;
        }
        assert!(tokio::time::Instant::now() < give_up && import["state"] != "done", "never seen running: {import}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let imported_at_kill = at_kill["imported"].as_u64().unwrap();
    assert!(imported_at_kill < ENTRIES as u64, "the kill came after the last entry; nothing to resume");

    let rescuer = TestApp::spawn_sharing(db.clone(), |config| config.data_dir = blobs.path().to_owned()).await;
    let within = Duration::from_secs(150);
    let import = common::import_until(&rescuer, &token, &id, within, |import| import["state"] == "done").await;
    assert_eq!(
        (import["imported"].as_u64(), import["duplicate"].as_u64(), import["failed"].as_u64()),
        (Some(ENTRIES as u64), Some(0), Some(0)),
        "{import}"
    );
    assert!(import["rate_per_s"].is_null() && import["eta_s"].is_null(), "{import}");
    let items: Value =
        rescuer.get(&format!("/api/v1/imports/{id}/items?limit=100"), &token).await.json().await.unwrap();
    let items = items["items"].as_array().unwrap();
    assert_eq!(items.len(), ENTRIES, "planned once");
    let mut activity_ids: Vec<&str> = items.iter().map(|i| i["activity_id"].as_str().unwrap()).collect();
    activity_ids.sort_unstable();
    activity_ids.dedup();
    assert_eq!(activity_ids.len(), ENTRIES, "one activity per entry");
    let listed: Value = rescuer.get("/api/v1/activities?limit=100", &token).await.json().await.unwrap();
    let mut titles: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(titles.len(), ENTRIES, "no entry imported twice");
    assert_eq!(listed["items"].as_array().unwrap().len(), ENTRIES, "no entry imported twice");
    // The archive is gone once its import is done.
    let archive = blobs.path().join("blobs").join(format!("imports/{id}/archive.zip"));
    assert!(!archive.exists(), "{archive:?} is still stored");
    rescuer.shutdown().await.unwrap();
}
