//! Photos end to end over HTTP: on SQLite + the disk store, and on PostgreSQL + S3 (s3s-fs, a
//! real S3 API that checks signatures).

mod common;

use std::io::Cursor;
use std::path::Path;

use common::{TestApp, error_code, error_message, run};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use stride_repository::{Backend, S3TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A JPEG of `width`×`height` with a gradient (so it compresses like a photo, not a flat fill).
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn png_with_transparency(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, _| {
        image::Rgba([200, 10, 10, if x < width / 2 { 0 } else { 255 }])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(image).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn form(files: &[(&str, Vec<u8>)]) -> Form {
    files.iter().fold(Form::new(), |form, (name, bytes)| {
        form.part(
            "photo",
            Part::bytes(bytes.clone()).file_name(name.to_string()).mime_str("application/octet-stream").unwrap(),
        )
    })
}

async fn upload(app: &TestApp, token: &str, activity: &str, files: &[(&str, Vec<u8>)]) -> reqwest::Response {
    upload_keyed(app, token, activity, files, None).await
}

async fn upload_keyed(
    app: &TestApp,
    token: &str,
    activity: &str,
    files: &[(&str, Vec<u8>)],
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/activities/{activity}/photos")))
        .bearer_auth(token)
        .multipart(form(files));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// Every file under `dir`, recursively (the disk store's blobs). The folder must exist (the
/// store creates it at start): "nothing stored" must not pass because the test looked in the
/// wrong place.
fn files_under(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()));
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

async fn activity_of(app: &TestApp, token: &str) -> String {
    app.create_activity(token, run("2026-05-01T07:00:00Z")).await["id"].as_str().unwrap().to_owned()
}

/// Upload, list, serve with ETag/304, original for the owner only, delete, activity delete.
async fn the_photo_lifecycle(app: &TestApp, blobs: impl Fn() -> usize) {
    let (alice, _) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let activity = activity_of(app, &alice).await;

    let original = jpeg(3000, 2000);
    let response = upload(
        app,
        &alice,
        &activity,
        &[("big.jpg", original.clone()), ("small.png", png_with_transparency(200, 100))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["position"], 0);
    assert_eq!(items[1]["position"], 1);
    assert_eq!((items[0]["width"].as_u64(), items[0]["height"].as_u64()), (Some(3000), Some(2000)));
    assert_eq!(
        (items[0]["display"]["width"].as_u64(), items[0]["display"]["height"].as_u64()),
        (Some(2048), Some(1365))
    );
    assert_eq!((items[0]["thumb"]["width"].as_u64(), items[0]["thumb"]["height"].as_u64()), (Some(320), Some(213)));
    assert_eq!((items[1]["display"]["width"].as_u64(), items[1]["thumb"]["width"].as_u64()), (Some(200), Some(200)));
    assert_eq!(items[0]["activity_id"], activity.as_str());
    assert_eq!(blobs(), 6, "three blobs a photo");

    let shown = app.get(&format!("/api/v1/activities/{activity}"), &alice).await.json::<Value>().await.unwrap();
    assert_eq!(shown["photo_count"], 2);
    let listed = app.get("/api/v1/activities", &alice).await.json::<Value>().await.unwrap();
    assert_eq!(listed["items"][0]["photo_count"], 2);
    let photos = app.get(&format!("/api/v1/activities/{activity}/photos"), &alice).await.json::<Value>().await.unwrap();
    assert_eq!(photos["items"].as_array().unwrap().len(), 2);
    assert_eq!(photos["items"][0]["id"], items[0]["id"]);

    let first = items[0]["id"].as_str().unwrap();
    let display = app.get(&format!("/api/v1/photos/{first}/display"), &alice).await;
    assert_eq!(display.status(), StatusCode::OK);
    assert_eq!(display.headers()["content-type"], "image/jpeg");
    assert_eq!(display.headers()["cache-control"], "private, no-cache", "every reuse is checked again");
    let etag = display.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = display.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, items[0]["display"]["bytes"].as_u64().unwrap());
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (2048, 1365));
    let again = app
        .client
        .get(app.url(&format!("/api/v1/photos/{first}/display")))
        .bearer_auth(&alice)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let second = items[1]["id"].as_str().unwrap();
    let thumb = app.get(&format!("/api/v1/photos/{second}/thumb"), &alice).await;
    assert_eq!(thumb.headers()["content-type"], "image/png", "transparency stays PNG");

    let kept = app.get(&format!("/api/v1/photos/{first}/original"), &alice).await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(kept.bytes().await.unwrap().as_ref(), original.as_slice(), "the original is kept as uploaded");
    // The activity is private: Bob sees none of it.
    for path in [
        format!("/api/v1/photos/{first}/original"),
        format!("/api/v1/photos/{first}/display"),
        format!("/api/v1/activities/{activity}/photos"),
    ] {
        assert_eq!(error_code(app.get(&path, &bob).await, StatusCode::NOT_FOUND).await, "not_found", "{path}");
    }
    // Public: Bob sees the renditions, never the original.
    app.patch(&format!("/api/v1/activities/{activity}"), &alice, serde_json::json!({"visibility": "public"})).await;
    assert_eq!(app.get(&format!("/api/v1/photos/{first}/thumb"), &bob).await.status(), StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/photos/{first}/original"), &bob).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/photos/{first}"), &bob).await.status(), StatusCode::NOT_FOUND);
    // Bob cannot add photos to Alice's activity.
    let stranger = upload(app, &bob, &activity, &[("x.jpg", jpeg(10, 10))]).await;
    assert_eq!(error_code(stranger, StatusCode::NOT_FOUND).await, "not_found");

    assert_eq!(app.delete(&format!("/api/v1/photos/{first}"), &alice).await.status(), StatusCode::NO_CONTENT);
    // The blobs go by a durable job enqueued with the delete; the server's runner takes it.
    common::eventually("a deleted photo's blobs are gone", || blobs() == 3).await;
    assert_eq!(app.get(&format!("/api/v1/photos/{first}/display"), &alice).await.status(), StatusCode::NOT_FOUND);
    let shown = app.get(&format!("/api/v1/activities/{activity}"), &alice).await.json::<Value>().await.unwrap();
    assert_eq!(shown["photo_count"], 1);
    // The next upload continues after the highest position.
    let more = upload(app, &alice, &activity, &[("third.jpg", jpeg(64, 48))]).await.json::<Value>().await.unwrap();
    assert_eq!(more["items"][0]["position"], 2);

    assert_eq!(app.delete(&format!("/api/v1/activities/{activity}"), &alice).await.status(), StatusCode::NO_CONTENT);
    common::eventually("deleting an activity deletes its photos' blobs", || blobs() == 0).await;
}

#[tokio::test]
async fn photos_live_and_die_with_their_activity_on_sqlite_and_disk() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let dir = app.data_dir().join("blobs");
    the_photo_lifecycle(&app, || files_under(&dir).len()).await;
}

#[tokio::test]
async fn photos_live_and_die_with_their_activity_on_postgres_and_s3() {
    let s3 = S3TestServer::start();
    let root = s3.root().join(&s3.bucket);
    let app = TestApp::spawn_with(Backend::Postgres, |config| common::use_s3(config, &s3)).await;
    // s3s-fs keeps each object as a file under the bucket's folder (plus its own metadata).
    the_photo_lifecycle(&app, || files_under(&root).iter().filter(|f| !f.contains(".s3s")).count()).await;
}

#[tokio::test]
async fn on_s3_renditions_can_redirect_to_a_presigned_url() {
    let s3 = S3TestServer::start();
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        common::use_s3(config, &s3);
        config.s3_presign_secs = 60;
    })
    .await;
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;
    let body: Value = upload(&app, &alice, &activity, &[("a.jpg", jpeg(400, 300))]).await.json().await.unwrap();
    let id = body["items"][0]["id"].as_str().unwrap();
    let no_redirects = common::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response =
        no_redirects.get(app.url(&format!("/api/v1/photos/{id}/thumb"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    // The presigned URL works without Stride's token: S3 checks its signature.
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    let thumb = image::load_from_memory(&fetched.bytes().await.unwrap()).unwrap();
    assert_eq!(thumb.width(), 320);

    // The web app's pages allow images from their own origin only (CSP `img-src 'self'`), so
    // the pages' photo routes always answer with the bytes, never a redirect to S3.
    let session = common::page_session(&no_redirects, &app, "alice").await;
    for kind in ["thumb", "display"] {
        let page_photo =
            no_redirects.get(app.url(&format!("/photos/{id}/{kind}"))).header("cookie", &session).send().await.unwrap();
        assert_eq!(page_photo.status(), StatusCode::OK, "{kind}");
        assert_eq!(page_photo.headers()["content-type"], "image/jpeg");
        let served = image::load_from_memory(&page_photo.bytes().await.unwrap()).unwrap();
        assert_eq!(served.width(), if kind == "thumb" { 320 } else { 400 });
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_right_status_and_store_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.upload_max_file_bytes = 200_000;
        config.upload_max_request_bytes = 1_000_000;
    })
    .await;
    let dir = app.data_dir().join("blobs");
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;

    let gif = upload(
        &app,
        &alice,
        &activity,
        &[("fine.jpg", jpeg(32, 32)), ("anim.gif", b"GIF89a\x01\x00\x01\x00".to_vec())],
    )
    .await;
    let message = error_message(gif, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert!(message.contains("anim.gif"), "{message}");

    let mut truncated = jpeg(400, 300);
    truncated.truncate(truncated.len() / 2);
    let corrupt = upload(&app, &alice, &activity, &[("ok.jpg", jpeg(64, 64)), ("cut.jpg", truncated)]).await;
    let message = error_message(corrupt, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(message.contains("cut.jpg"), "{message}");

    let eleven: Vec<_> = (0..11).map(|_| ("p.jpg", jpeg(8, 8))).collect();
    assert_eq!(
        error_code(upload(&app, &alice, &activity, &eleven).await, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );

    let none = app
        .client
        .post(app.url(&format!("/api/v1/activities/{activity}/photos")))
        .bearer_auth(&alice)
        .multipart(Form::new().text("note", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(none, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input");

    let noise: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let big = upload(&app, &alice, &activity, &[("huge.jpg", noise)]).await;
    let message = error_message(big, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(message.contains("huge.jpg"), "{message}");

    // Decided from the header alone: the body is never read.
    let declared = app
        .client
        .post(app.url(&format!("/api/v1/activities/{activity}/photos")))
        .bearer_auth(&alice)
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", "5000000")
        .body(vec![0u8; 10])
        .send()
        .await;
    if let Ok(response) = declared {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let json = app.post(&format!("/api/v1/activities/{activity}/photos"), Some(&alice), serde_json::json!({})).await;
    assert_eq!(error_code(json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await, "unsupported_media_type");

    assert!(files_under(&dir).is_empty(), "nothing stored: {:?}", files_under(&dir));
    let shown = app.get(&format!("/api/v1/activities/{activity}"), &alice).await.json::<Value>().await.unwrap();
    assert_eq!(shown["photo_count"], 0);
    let missing = upload(&app, &alice, "0190b5a2-7c1e-7000-8000-000000000000", &[("a.jpg", jpeg(8, 8))]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_retried_upload_with_its_key_returns_the_first_photos() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let dir = app.data_dir().join("blobs");
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;
    let files = [("a.jpg", jpeg(100, 80)), ("b.jpg", jpeg(80, 100))];
    let first: Value = upload_keyed(&app, &alice, &activity, &files, Some("k-1")).await.json().await.unwrap();
    // reqwest picks a new random boundary for every form: the raw bodies differ.
    let retry = upload_keyed(&app, &alice, &activity, &files, Some("k-1")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["items"], first["items"]);
    assert_eq!(files_under(&dir).len(), 6, "the retry stored nothing more");
    let other = upload_keyed(&app, &alice, &activity, &[("c.jpg", jpeg(10, 10))], Some("k-1")).await;
    assert_eq!(error_code(other, StatusCode::CONFLICT).await, "idempotency_key_reused");
}

/// Sends the head and half the body of an upload, then closes the socket.
async fn disconnect_mid_body(app: &TestApp, token: &str, activity: &str) {
    let socket = half_sent_upload(app, token, activity).await;
    // The handler is running (reading the body) before the client goes away.
    app.wait_for_in_flight(|n| n >= 1).await;
    drop(socket);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_behind() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let dir = app.data_dir().join("blobs");
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;
    disconnect_mid_body(&app, &alice, &activity).await;
    // The server notices the closed socket, ends the request and cleans up; once no request is
    // in flight and every upload task has ended, nothing may remain.
    app.wait_for_in_flight(|n| n == 0).await;
    assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));
    let photos = app.get(&format!("/api/v1/activities/{activity}/photos"), &alice).await.json::<Value>().await.unwrap();
    assert_eq!(photos["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_stalled_body_is_cut_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| config.upload_stall_timeout_ms = 300).await;
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;
    let address = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/activities/{activity}/photos HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n--b\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_stalled"), "{answer}");
}

async fn photo_count(app: &TestApp, token: &str, activity: &str) -> usize {
    let body: Value = app.get(&format!("/api/v1/activities/{activity}/photos"), token).await.json().await.unwrap();
    body["items"].as_array().expect("a list of photos").len()
}

async fn a_user_past_their_storage_quota_is_refused_naming_the_usage(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.user_storage_bytes = 400_000).await;
    let (token, _) = app.register("hoarder").await;
    let activity = activity_of(&app, &token).await;
    let first = upload(&app, &token, &activity, &[("a.jpg", jpeg(1200, 900))]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(photo_count(&app, &token, &activity).await, 1);
    // Big enough that the stored photo and this one pass 400 kB together.
    let big = jpeg(2400, 1800);
    assert!(big.len() > 200_000, "{} bytes", big.len());
    let refused = upload(&app, &token, &activity, &[("b.jpg", big)]).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("storage quota exceeded:") && message.contains("of 0.4 MiB used"), "{message}");
    assert_eq!(photo_count(&app, &token, &activity).await, 1, "nothing more was stored");
    // Another user has a quota of their own.
    let (other, _) = app.register("modest").await;
    let theirs = activity_of(&app, &other).await;
    assert_eq!(upload(&app, &other, &theirs, &[("c.jpg", jpeg(1200, 900))]).await.status(), StatusCode::CREATED);
}

stride_repository::each_backend!(backend: a_user_past_their_storage_quota_is_refused_naming_the_usage,);

/// An upload whose head and first half of its body are sent, the rest never: it stays in flight.
async fn half_sent_upload(app: &TestApp, token: &str, activity: &str) -> tokio::net::TcpStream {
    let boundary = "stride-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend(jpeg(800, 600));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let address = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/activities/{activity}/photos HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body[..body.len() / 2]).await.unwrap();
    socket.flush().await.unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_upload_of_one_user_in_flight_is_refused_and_others_are_not() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (alice, _) = app.register("alice").await;
    let activity = activity_of(&app, &alice).await;
    let hanging = [half_sent_upload(&app, &alice, &activity).await, half_sent_upload(&app, &alice, &activity).await];
    app.wait_for_in_flight(|n| n == 2).await;
    // Once both hanging uploads hold their slots, a third of alice's is refused. (Until they do,
    // a third may still get through: it is a real upload, and the next one asks again.)
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let third = upload(&app, &alice, &activity, &[("c.jpg", jpeg(200, 150))]).await;
        match third.status() {
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(third.headers().contains_key("retry-after"));
                break;
            }
            StatusCode::CREATED => assert!(tokio::time::Instant::now() < give_up, "never refused"),
            other => panic!("a third upload answered {other}"),
        }
    }
    let (bob, _) = app.register("bob").await;
    let bobs = activity_of(&app, &bob).await;
    assert_eq!(upload(&app, &bob, &bobs, &[("b.jpg", jpeg(200, 150))]).await.status(), StatusCode::CREATED, "per user");
    // The hanging ones gone, alice's slots are hers again.
    drop(hanging);
    app.wait_for_in_flight(|n| n == 0).await;
    assert_eq!(upload(&app, &alice, &activity, &[("d.jpg", jpeg(200, 150))]).await.status(), StatusCode::CREATED);
}
