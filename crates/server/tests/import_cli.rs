//! `stride import FILE --user NAME`: the operator's import, run by the binary against the
//! server's database and blob folder, with a log line of progress when stderr is no terminal,
//! a summary, and exit status 1 when an item failed.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::TestApp;
use serde_json::Value;
use stride_repository::Backend;
use stride_repository::testing::TestDatabase;
use stride_tracks::testing::{ZipEntry, gpx_file, gzip, synthetic_run, zip_file};

stride_repository::each_backend!(backend: the_command_imports_an_archive_and_fails_on_a_failed_item);

fn stride_import(db: &TestDatabase, data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stride"))
        .arg("import")
        .args(args)
        .env("STRIDE_DATABASE_URL", db.url())
        .env("STRIDE_DATA_DIR", data_dir)
        .env("STRIDE_LOG", "info")
        .output()
        .expect("run stride import")
}

async fn the_command_imports_an_archive_and_fails_on_a_failed_item(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_sharing(db.clone(), |config| config.data_dir = data.path().to_owned()).await;
    let (alice, _) = app.register("alice").await;

    let runs: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            gzip(
                gpx_file(
                    &synthetic_run(200, (46.0 + f64::from(i) * 0.01, 14.5), 1_780_349_400 + i64::from(i) * 86_400),
                    None,
                    None,
                )
                .as_bytes(),
            )
        })
        .collect();
    let good = zip_file(&[
        ZipEntry::File("a.gpx.gz", &runs[0]),
        ZipEntry::File("b.gpx.gz", &runs[1]),
        ZipEntry::File("notes.txt", b"skipped"),
    ]);
    let archive = data.path().join("watch.zip");
    std::fs::write(&archive, &good).unwrap();
    let output =
        stride_import(&db, data.path(), &[archive.to_str().unwrap(), "--user", "alice", "--visibility", "public"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(": done — 2 imported, 0 duplicate, 0 failed, 0 cancelled of 2"), "{stdout}");
    assert!(stdout.contains("import progress"), "a log line when stderr is no terminal: {stdout}\n{stderr}");
    let listed: Value = app.get("/api/v1/activities", &alice).await.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|a| a["visibility"] == "public"));

    // A failed item: exit status 1, named in the summary; the rest imported.
    let bad = zip_file(&[ZipEntry::File("c.gpx.gz", &runs[2]), ZipEntry::File("broken.gpx", b"<gpx><trk>")]);
    std::fs::write(&archive, &bad).unwrap();
    let output = stride_import(&db, data.path(), &[archive.to_str().unwrap(), "--user", "alice"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 imported, 0 duplicate, 1 failed") && stdout.contains("failed #1 broken.gpx: invalid_file"),
        "{stdout}"
    );

    // Unknown users and files are refused before anything is recorded.
    let output = stride_import(&db, data.path(), &[archive.to_str().unwrap(), "--user", "nobody"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--user nobody"));
    let imports: Value = app.get("/api/v1/imports", &alice).await.json().await.unwrap();
    assert_eq!(imports["items"].as_array().unwrap().len(), 2);
    app.shutdown().await.unwrap();
}
