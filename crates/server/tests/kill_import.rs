//! `kill -9` of a `stride` process in the middle of an import: once its 30 s lease expires,
//! another instance resumes the job at the first item still queued, and every file is
//! imported exactly once — no item twice, none lost.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{StrideProcess, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use stride_repository::Backend;
use stride_repository::testing::TestDatabase;
use stride_tracks::testing::{gpx_file, synthetic_run};

stride_repository::each_backend!(backend: an_import_killed_mid_way_resumes_and_imports_every_file_once);

const FILES: usize = 12;

async fn an_import_killed_mid_way_resumes_and_imports_every_file_once(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    // Both processes keep files in one folder, as replicas share one bucket.
    let blobs = tempfile::tempdir().unwrap();
    let data_dir = blobs.path().to_str().unwrap().to_owned();
    let mut doomed = StrideProcess::start(&db, &[("STRIDE_DATA_DIR", data_dir.as_str())]).await;
    let client = common::http_client();
    let token = doomed.register("doomed_import").await;
    // Twelve different runs of 20,000 points each (gzipped for the upload): long enough to
    // parse that the kill lands between items.
    let form = (0..FILES).fold(Form::new(), |form, i| {
        let points = synthetic_run(20_000, (46.0 + i as f64 * 0.01, 14.5), 1_780_349_400 + i as i64 * 86_400);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(gpx_file(&points, Some(&format!("run {i}")), Some("running")).as_bytes()).unwrap();
        form.part("file", Part::bytes(gz.finish().unwrap()).file_name(format!("{i}.gpx.gz")))
    });
    let accepted: Value = client
        .post(doomed.url("/api/v1/imports"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();

    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    let imported_at_kill = loop {
        let import: Value = client
            .get(doomed.url(&format!("/api/v1/imports/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let imported = import["imported"].as_u64().unwrap();
        if imported >= 1 {
            doomed.child.kill().expect("kill -9");
            doomed.child.wait().unwrap();
            break imported;
        }
        assert!(tokio::time::Instant::now() < give_up, "the import never started: {import}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(imported_at_kill < FILES as u64, "the kill came after the last item; nothing to resume");

    let rescuer = TestApp::spawn_sharing(db.clone(), |config| config.data_dir = blobs.path().to_owned()).await;
    let within = Duration::from_secs(120);
    let import = common::import_until(&rescuer, &token, &id, within, |import| import["state"] == "done").await;
    assert_eq!(
        (import["imported"].as_u64(), import["duplicate"].as_u64(), import["failed"].as_u64()),
        (Some(FILES as u64), Some(0), Some(0))
    );
    let items: Value = rescuer.get(&format!("/api/v1/imports/{id}/items"), &token).await.json().await.unwrap();
    let mut activity_ids: Vec<&str> =
        items["items"].as_array().unwrap().iter().map(|i| i["activity_id"].as_str().unwrap()).collect();
    activity_ids.sort_unstable();
    activity_ids.dedup();
    assert_eq!(activity_ids.len(), FILES, "one activity per file");
    let listed: Value = rescuer.get("/api/v1/activities?limit=100", &token).await.json().await.unwrap();
    let titles: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), FILES, "no file imported twice: {titles:?}");
    rescuer.shutdown().await.unwrap();
}
