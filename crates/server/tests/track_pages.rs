//! The web app's track pages: importing through the form, the import's page until it is
//! done, the activity page's route, elevation profile, splits and GPX download, the route
//! thumbnails of lists, and the privacy zones page.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, form_token, page_session};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use stride_repository::Backend;
use stride_tracks::testing::{gpx_file, synthetic_run};

#[tokio::test]
async fn tracks_are_imported_shown_and_kept_private_through_the_pages() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("alice").await;
    let client = common::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = page_session(&client, &app, "alice").await;
    let get = |path: &str| client.get(app.url(path)).header("cookie", &session).send();

    let page = get("/imports").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"name="file" type="file" multiple"#), "{html}");
    let csrf = form_token(&html);
    let gpx = gpx_file(&synthetic_run(2500, (46.05, 14.5), 1_780_349_400), Some("Castle hill"), Some("hiking"));
    let form =
        Form::new().text("visibility", "private").part("file", Part::bytes(gpx.into_bytes()).file_name("castle.gpx"));
    let posted = client
        .post(app.url(&format!("/imports?csrf={csrf}")))
        .header("cookie", &session)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let import_page = posted.headers()["location"].to_str().unwrap().to_owned();
    assert!(import_page.starts_with("/imports/"), "{import_page}");

    // The import's page reloads itself while the import runs, then links each file's activity.
    let deadline = Instant::now() + Duration::from_secs(30);
    let html = loop {
        let html = get(&import_page).await.unwrap().text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "the refresh is in the head, not before the doctype");
        if !html.contains("http-equiv=\"refresh\"") {
            break html;
        }
        assert!(Instant::now() < deadline, "the import page still refreshes after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(html.contains("done: 1 of 1 imported"), "{html}");
    let link = html.split("href=\"/activities/").nth(1).expect("a link to the activity");
    let activity = &link[..link.find('"').unwrap()];

    let html = get(&format!("/activities/{activity}")).await.unwrap().text().await.unwrap();
    assert!(html.contains("<h1>Castle hill</h1>"), "{html}");
    assert!(html.contains(r#"<svg class="route""#) && html.contains("<polyline points="), "the route, drawn inline");
    assert!(html.contains(r#"<figure class="elevation">"#), "the elevation profile");
    assert!(html.contains("<caption>Splits</caption>") && html.contains("bpm average"), "splits and heart rate");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "no third-party requests");
    let download = get(&format!("/activities/{activity}/export.gpx")).await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download.text().await.unwrap().contains("<gpx version=\"1.1\""));
    let listed = get("/activities").await.unwrap().text().await.unwrap();
    assert!(listed.contains(r#"aria-label="Route thumbnail""#), "lists show each route's thumbnail");

    // Privacy zones: added, refused out of range, listed, removed.
    let html = get("/settings/privacy").await.unwrap().text().await.unwrap();
    let csrf = form_token(&html);
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        client.post(app.url(path)).header("cookie", &session).form(&fields).send()
    };
    let added = post(
        "/settings/privacy",
        vec![("csrf", csrf.clone()), ("lat", "46.05".into()), ("lon", "14.5".into()), ("radius_m", "400".into())],
    )
    .await
    .unwrap();
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let refused = post(
        "/settings/privacy",
        vec![("csrf", csrf.clone()), ("lat", "46".into()), ("lon", "14".into()), ("radius_m", "50".into())],
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("radius_m: must be from 200 to 2000 metres"));
    let html = get("/settings/privacy").await.unwrap().text().await.unwrap();
    assert!(html.contains("46.05000, 14.50000 — 400 m"), "{html}");
    let remove = html.split("action=\"/settings/privacy/").nth(1).unwrap();
    let zone = &remove[..remove.find('/').unwrap()];
    let removed = client
        .post(app.url(&format!("/settings/privacy/{zone}/delete")))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert!(get("/settings/privacy").await.unwrap().text().await.unwrap().contains("No zones yet."));
}

#[tokio::test]
async fn an_archive_is_imported_through_the_form_with_its_progress_and_items_paged() {
    use stride_tracks::testing::{ZipEntry, zip_file};
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("alice").await;
    let client = common::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = page_session(&client, &app, "alice").await;
    let get = |path: &str| client.get(app.url(path)).header("cookie", &session).send();
    let html = get("/imports").await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"accept=".gpx,.tcx,.fit,.gz,.zip""#), "{html}");
    let csrf = form_token(&html);

    // 103 entries: two pages of items. The last one is no track.
    let files: Vec<(String, Vec<u8>)> = (0..103)
        .map(|i| {
            let gpx = gpx_file(&synthetic_run(20, (46.05, 14.5), 1_780_349_400 + i * 3_600), None, None);
            (format!("runs/{i:03}.gpx"), if i == 102 { b"<gpx>".to_vec() } else { gpx.into_bytes() })
        })
        .collect();
    let entries: Vec<ZipEntry<'_>> = files.iter().map(|(name, bytes)| ZipEntry::File(name, bytes)).collect();
    let form = Form::new().part("file", Part::bytes(zip_file(&entries)).file_name("runs.zip"));
    let posted = client
        .post(app.url(&format!("/imports?csrf={csrf}")))
        .header("cookie", &session)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let import_page = posted.headers()["location"].to_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    let html = loop {
        let html = get(&import_page).await.unwrap().text().await.unwrap();
        if !html.contains("http-equiv=\"refresh\"") {
            break html;
        }
        assert!(Instant::now() < deadline, "the import page still refreshes after 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(html.contains("done: 102 of 103 imported"), "{html}");
    assert!(html.contains(r#"<progress id="import-progress" max="103" value="103""#), "{html}");
    assert_eq!(html.matches("<li data-state=").count(), 100, "the first page of items");
    assert!(html.contains(&format!(r#"href="{import_page}?from=100""#)) && !html.contains("import-previous"), "{html}");
    let second = get(&format!("{import_page}?from=100")).await.unwrap().text().await.unwrap();
    assert_eq!(second.matches("<li data-state=").count(), 3);
    assert!(second.contains("runs/102.gpx") && second.contains("invalid_file"), "{second}");
    assert!(second.contains(r#"<ol class="listing" id="import-items" start="101">"#), "{second}");
    assert!(second.contains("import-previous") && !second.contains("import-next"), "{second}");
}
