//! The HTTP contract of issue #2, driven over real sockets against both backends.

mod common;

use common::{TestApp, error_code, error_message, run};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stride_repository::Backend;

stride_repository::each_backend!(
    backend:
    registering_logging_in_and_out_follows_the_contract,
    usernames_are_case_insensitive_and_unique,
    invalid_registrations_are_rejected_and_create_nothing,
    wrong_credentials_look_the_same_and_repeated_failures_are_throttled,
    missing_and_forged_tokens_are_rejected,
    the_profile_can_be_read_and_changed,
    activities_can_be_created_read_changed_and_deleted,
    titles_are_stored_verbatim,
    bad_activity_input_is_rejected_with_the_right_status_and_changes_nothing,
    other_users_activities_are_hidden_unless_public_and_never_changeable,
    pages_are_newest_first_and_every_item_appears_exactly_once,
    bad_page_parameters_are_rejected,
    an_idempotency_key_makes_a_retried_create_return_the_first_result,
    fifty_concurrent_writes_all_succeed,
    framework_rejections_carry_the_error_envelope,
    operational_endpoints_report_health_and_metrics,
    every_documented_operation_is_routed,
);

async fn registering_logging_in_and_out_follows_the_contract(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "alice", "password": "correct horse", "display_name": "Alice A.", "timezone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["timezone"], "Europe/Paris");
    assert!(user["id"].as_str().unwrap().len() == 36 && user["created_at"].is_string());
    assert_eq!(user.as_object().unwrap().len(), 5, "exactly id, username, display_name, timezone, created_at");
    let first_token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(first_token.len(), 43);

    let response =
        app.post("/api/v1/auth/login", None, json!({"username": "ALICE", "password": "correct horse"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let second_token = body["token"].as_str().unwrap().to_owned();
    assert_ne!(first_token, second_token);
    assert_eq!(body["user"], *user);

    let me: Value = app.get("/api/v1/me", &second_token).await.json().await.unwrap();
    assert_eq!(me, *user);

    let response = app.post("/api/v1/auth/logout", Some(&second_token), json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        error_code(app.get("/api/v1/me", &second_token).await, StatusCode::UNAUTHORIZED).await,
        "unauthenticated"
    );
    // Logging out one session leaves the others alone.
    assert_eq!(app.get("/api/v1/me", &first_token).await.status(), StatusCode::OK);
}

async fn usernames_are_case_insensitive_and_unique(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("bob").await;
    let response =
        app.post("/api/v1/auth/register", None, json!({"username": "BoB", "password": "another one!"})).await;
    assert_eq!(error_code(response, StatusCode::CONFLICT).await, "username_taken");
}

async fn invalid_registrations_are_rejected_and_create_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (json!({"username": "al", "password": "long enough"}), "username"),
        (json!({"username": "al ice", "password": "long enough"}), "username"),
        (json!({"username": "alice", "password": "short"}), "password"),
        (json!({"username": "alice", "password": "x".repeat(129)}), "password"),
        (json!({"username": "alice", "password": "long enough", "timezone": "Mars/Base"}), "timezone"),
        (json!({"username": "alice", "password": "long enough", "display_name": "   "}), "display_name"),
        (json!({"username": "alice", "password": "long enough", "id": "x"}), "id"),
        (json!({"username": 7, "password": "long enough"}), "username"),
    ];
    for (body, field) in cases {
        let message = error_message(
            app.post("/api/v1/auth/register", None, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message.contains(field), "{body}: message {message:?} names {field}");
    }
    // None of them created alice.
    app.register("alice").await;
}

async fn wrong_credentials_look_the_same_and_repeated_failures_are_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("carol").await;
    let wrong_password =
        app.post("/api/v1/auth/login", None, json!({"username": "carol", "password": "wrong password"})).await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    let wrong_password: Value = wrong_password.json().await.unwrap();
    let unknown_user =
        app.post("/api/v1/auth/login", None, json!({"username": "nobody", "password": "wrong password"})).await;
    assert_eq!(unknown_user.status(), StatusCode::UNAUTHORIZED);
    let unknown_user: Value = unknown_user.json().await.unwrap();
    assert_eq!(wrong_password, unknown_user, "the two failures are indistinguishable");

    for _ in 0..4 {
        let r = app.post("/api/v1/auth/login", None, json!({"username": "carol", "password": "still wrong"})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Five failures: now even the right password is refused until the window passes.
    let throttled =
        app.post("/api/v1/auth/login", None, json!({"username": "Carol", "password": "correct horse battery"})).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after));
    assert_eq!(error_code(throttled, StatusCode::TOO_MANY_REQUESTS).await, "too_many_attempts");
    // Other users are unaffected.
    app.register("dave").await;
    let ok =
        app.post("/api/v1/auth/login", None, json!({"username": "dave", "password": "correct horse battery"})).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn missing_and_forged_tokens_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("erin").await;
    let no_header = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(no_header.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(no_header, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    // Change the last character (to one it is not), so the forged token is never the real one.
    let replacement = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{replacement}", &token[..42]);
    assert_ne!(forged, token);
    for bad in [forged.as_str(), "x", "' OR 1=1 --"] {
        assert_eq!(error_code(app.get("/api/v1/me", bad).await, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    }
    let basic =
        app.client.get(app.url("/api/v1/me")).header("authorization", format!("Basic {token}")).send().await.unwrap();
    assert_eq!(error_code(basic, StatusCode::UNAUTHORIZED).await, "unauthenticated");
    let response = app.post("/api/v1/activities", None, run("2026-03-01T08:00:00Z")).await;
    assert_eq!(error_code(response, StatusCode::UNAUTHORIZED).await, "unauthenticated");
}

async fn the_profile_can_be_read_and_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, user) = app.register("frank").await;
    assert_eq!(user["timezone"], "UTC");
    assert_eq!(user["display_name"], "frank");
    let response = app.patch("/api/v1/me", &token, json!({"display_name": "Frank 🚴", "timezone": "Asia/Tokyo"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(
        (changed["display_name"].as_str(), changed["timezone"].as_str()),
        (Some("Frank 🚴"), Some("Asia/Tokyo"))
    );
    assert_eq!(changed["id"], user["id"]);

    // A control character at the end is refused, not trimmed away (the fuzzer's find: "2\v"
    // was stored as "2", though the document says no control character).
    for body in [
        json!({"timezone": "Nowhere/Town"}),
        json!({"username": "other"}),
        json!({"display_name": 5}),
        json!({"display_name": "2\u{000b}", "timezone": "Pacific/Fakaofo"}),
        json!({"display_name": "\tFrank"}),
    ] {
        let message =
            error_message(app.patch("/api/v1/me", &token, body.clone()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(!message.is_empty(), "{body}");
    }
    let me: Value = app.get("/api/v1/me", &token).await.json().await.unwrap();
    assert_eq!(me, changed, "rejected patches changed nothing");
}

async fn activities_can_be_created_read_changed_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, user) = app.register("gina").await;
    let created = app
        .create_activity(
            &token,
            json!({"sport": "ride", "title": "Evening spin", "started_at": "2026-03-01T23:30:00-08:00",
                   "duration_s": 3600, "distance_m": 30000.5, "visibility": "public"}),
        )
        .await;
    assert_eq!(created["user_id"], user["id"]);
    assert_eq!(created["sport"], "ride");
    assert_eq!(created["started_at"], "2026-03-01T23:30:00-08:00", "the client's offset is kept");
    assert_eq!(created["local_date"], "2026-03-01", "the date in that offset, not in UTC");
    assert_eq!((created["duration_s"].as_u64(), created["distance_m"].as_f64()), (Some(3600), Some(30000.5)));
    assert_eq!(created["visibility"], "public");
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(created["photo_count"], 0);
    assert_eq!((&created["start_latlng"], &created["weather"]), (&Value::Null, &Value::Null));
    assert_eq!(created["weather_status"], "none");
    assert_eq!(
        (&created["description"], &created["source"], &created["track"]),
        (&Value::Null, &json!("manual"), &Value::Null)
    );
    assert_eq!(created.as_object().unwrap().len(), 18);
    let id = created["id"].as_str().unwrap();

    let defaults = app.create_activity(&token, run("2026-03-02T07:00:00+01:00")).await;
    assert_eq!(defaults["visibility"], "friends");
    assert_eq!(defaults["title"], "");

    let fetched: Value = app.get(&format!("/api/v1/activities/{id}"), &token).await.json().await.unwrap();
    assert_eq!(fetched, created);

    let response = app
        .patch(
            &format!("/api/v1/activities/{id}"),
            &token,
            json!({"started_at": "2026-03-02T06:00:00+09:00", "title": "moved"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["local_date"], "2026-03-02");
    assert_eq!(patched["title"], "moved");
    assert_eq!(patched["sport"], "ride", "absent fields are unchanged");
    assert_eq!(patched["created_at"], created["created_at"]);
    assert_ne!(patched["updated_at"], created["updated_at"]);

    assert_eq!(app.delete(&format!("/api/v1/activities/{id}"), &token).await.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/v1/activities/{id}"), &token).await;
    assert_eq!(error_code(gone, StatusCode::NOT_FOUND).await, "not_found");
    assert_eq!(app.delete(&format!("/api/v1/activities/{id}"), &token).await.status(), StatusCode::NOT_FOUND);
}

async fn titles_are_stored_verbatim(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("hana").await;
    for title in ["Robert'); DROP TABLE activities;--", "\" OR \"1\"=\"1", "🏃‍♀️🔥 €5 — 朝ラン", "%_\\", "line\nbreak"]
    {
        let mut body = run("2026-03-01T08:00:00Z");
        body["title"] = json!(title);
        let created = app.create_activity(&token, body).await;
        let fetched: Value = app
            .get(&format!("/api/v1/activities/{}", created["id"].as_str().unwrap()), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["title"], title);
    }
    let page: Value = app.get("/api/v1/activities?limit=100", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 5, "the table survived");
}

async fn bad_activity_input_is_rejected_with_the_right_status_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("ivan").await;
    let valid = app.create_activity(&token, run("2026-03-01T08:00:00Z")).await;
    let id = valid["id"].as_str().unwrap().to_owned();

    let raw = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/activities"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(error_code(raw("{\"sport\": ").await.unwrap(), StatusCode::BAD_REQUEST).await, "malformed_request");
    assert_eq!(error_code(raw("not json").await.unwrap(), StatusCode::BAD_REQUEST).await, "malformed_request");
    let huge =
        raw(r#"{"sport":"run","started_at":"2026-03-01T08:00:00Z","duration_s":60,"distance_m":1e400}"#).await.unwrap();
    assert!(error_message(huge, StatusCode::UNPROCESSABLE_ENTITY).await.contains("distance_m"));
    let nan =
        raw(r#"{"sport":"run","started_at":"2026-03-01T08:00:00Z","duration_s":60,"distance_m":NaN}"#).await.unwrap();
    assert_eq!(nan.status(), StatusCode::BAD_REQUEST, "NaN is not JSON");

    let invalid = [
        (json!({"sport": "skate", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": 1.0}), "sport"),
        (json!({"sport": "run", "started_at": "2026-03-01 08:00", "duration_s": 60, "distance_m": 1.0}), "started_at"),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00", "duration_s": 60, "distance_m": 1.0}),
            "started_at",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 0, "distance_m": 1.0}),
            "duration_s",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 2_592_001, "distance_m": 1.0}),
            "duration_s",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60.5, "distance_m": 1.0}),
            "duration_s",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": -1.0}),
            "distance_m",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": 1e300}),
            "distance_m",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": "5"}),
            "distance_m",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": 1.0, "visibility": "everyone"}),
            "visibility",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": 1.0, "title": "x".repeat(201)}),
            "title",
        ),
        (
            json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60, "distance_m": 1.0, "user_id": "x"}),
            "user_id",
        ),
        (json!({"sport": "run", "started_at": "2026-03-01T08:00:00Z", "duration_s": 60}), "distance_m"),
        (json!([1, 2]), ""),
    ];
    for (body, field) in invalid {
        let message = error_message(
            app.post("/api/v1/activities", Some(&token), body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message.contains(field), "{body}: {message:?} should name {field}");
    }
    for body in [
        json!({"distance_m": -5}),
        json!({"id": "x"}),
        json!({"created_at": "2026-01-01T00:00:00Z"}),
        json!({"sport": "yoga"}),
    ] {
        let response = app.patch(&format!("/api/v1/activities/{id}"), &token, body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    let wrong_type = app
        .client
        .post(app.url("/api/v1/activities"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(run("2026-03-01T08:00:00Z").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await, "unsupported_media_type");

    // A 2 MiB body is refused from its Content-Length alone, before it is read. (Over a real
    // client the server's early answer races the client still writing the body, so the request
    // is made by hand: announce 2 MiB, send nothing, read the answer.)
    let (status, body) = announce_body(&app, "/api/v1/activities", &token, 2 * 1024 * 1024).await;
    assert_eq!(status, 413);
    let envelope: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(envelope["error"]["code"], "payload_too_large");

    let page: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "no rejected request created anything");
    assert_eq!(page["items"][0], valid, "no rejected patch changed anything");
}

async fn other_users_activities_are_hidden_unless_public_and_never_changeable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, _) = app.register("owner").await;
    let (other, _) = app.register("other").await;
    let mut originals = Vec::new();
    for visibility in ["private", "friends", "public"] {
        let mut body = run("2026-03-01T08:00:00Z");
        body["visibility"] = json!(visibility);
        originals.push(app.create_activity(&owner, body).await);
    }
    for activity in &originals {
        let path = format!("/api/v1/activities/{}", activity["id"].as_str().unwrap());
        let public = activity["visibility"] == "public";
        let read = app.get(&path, &other).await;
        if public {
            assert_eq!(read.status(), StatusCode::OK);
            assert_eq!(read.json::<Value>().await.unwrap(), *activity);
        } else {
            assert_eq!(error_code(read, StatusCode::NOT_FOUND).await, "not_found");
        }
        let patch = app.patch(&path, &other, json!({"title": "hijacked", "visibility": "public"})).await;
        assert_eq!(error_code(patch, StatusCode::NOT_FOUND).await, "not_found");
        assert_eq!(error_code(app.delete(&path, &other).await, StatusCode::NOT_FOUND).await, "not_found");
        let unchanged: Value = app.get(&path, &owner).await.json().await.unwrap();
        assert_eq!(unchanged, *activity, "the owner's activity is untouched");
    }
    // A hidden activity and a missing one answer identically.
    let hidden = app.get(&format!("/api/v1/activities/{}", originals[0]["id"].as_str().unwrap()), &other).await;
    let missing = app.get("/api/v1/activities/01890000-0000-7000-8000-000000000000", &other).await;
    assert_eq!(hidden.json::<Value>().await.unwrap(), missing.json::<Value>().await.unwrap());
    // Others' activities never appear in my list.
    let page: Value = app.get("/api/v1/activities", &other).await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
}

async fn pages_are_newest_first_and_every_item_appears_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("paula").await;
    // Same instant in three offsets, so ties are broken by id.
    let starts = [
        "2026-01-01T10:00:00Z",
        "2026-01-01T11:00:00+01:00",
        "2026-01-01T05:00:00-05:00",
        "2026-01-02T00:00:00Z",
        "2025-12-31T23:59:59Z",
    ];
    for start in starts {
        app.create_activity(&token, run(start)).await;
    }
    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/activities?limit=2&cursor={c}"),
            None => "/api/v1/activities?limit=2".to_owned(),
        };
        let page: Value = app.get(&path, &token).await.json().await.unwrap();
        pages += 1;
        if pages == 1 {
            // Added mid-pagination and newer than everything: must not shift later pages.
            app.create_activity(&token, run("2026-06-01T00:00:00Z")).await;
        }
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 items in pages of 2, next_cursor null on the last");
    assert_eq!(seen.len(), 5);
    let instants: Vec<(chrono::DateTime<chrono::Utc>, String)> = seen
        .iter()
        .map(|a| {
            (
                chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap()).unwrap().into(),
                a["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = instants.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(instants, sorted, "newest first, ties by id descending, no repeats");

    let all: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 6, "default limit 20 covers all");
    assert_eq!(all["next_cursor"], Value::Null);
}

async fn bad_page_parameters_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("quinn").await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "limit=",
        "limit",
        "limit=1.0",
        "limit=1&limit=2",
        "cursor=garbage",
        "cursor=djE6eDp5",
    ] {
        let response = app.get(&format!("/api/v1/activities?{query}"), &token).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input", "{query}");
    }
    assert_eq!(app.get("/api/v1/activities?limit=100", &token).await.status(), StatusCode::OK);
}

async fn an_idempotency_key_makes_a_retried_create_return_the_first_result(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("rita").await;
    let (other, _) = app.register("sam").await;
    let send = |token: &str, key: &str, body: Value| {
        app.client
            .post(app.url("/api/v1/activities"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = send(&token, "retry-me-1", run("2026-03-01T08:00:00Z")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    // Concurrent and sequential retries all get the first result.
    let retries =
        futures::future::join_all((0..5).map(|_| send(&token, "retry-me-1", run("2026-03-01T08:00:00Z")))).await;
    for retry in retries {
        let retry = retry.unwrap();
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
    }
    let reused = send(&token, "retry-me-1", run("2026-03-09T08:00:00Z")).await.unwrap();
    assert_eq!(error_code(reused, StatusCode::CONFLICT).await, "idempotency_key_reused");
    // The same key from another user is a different request.
    let theirs = send(&other, "retry-me-1", run("2026-03-01T08:00:00Z")).await.unwrap();
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert_ne!(theirs.json::<Value>().await.unwrap()["id"], first["id"]);
    let bad_key = send(&token, "", run("2026-03-01T08:00:00Z")).await.unwrap();
    assert_eq!(bad_key.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let page: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "retries created nothing");
}

async fn fifty_concurrent_writes_all_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("tina").await;
    let writes = (0..50).map(|i| {
        let mut body = run(&format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60));
        body["title"] = json!(format!("write {i}"));
        app.post("/api/v1/activities", Some(&token), body)
    });
    let responses = futures::future::join_all(writes).await;
    for response in responses {
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(!body.contains("locked"), "{body}");
    }
    let page: Value = app.get("/api/v1/activities?limit=100", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
}

async fn framework_rejections_carry_the_error_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("uma").await;
    assert_eq!(error_code(app.get("/api/v1/nope", &token).await, StatusCode::NOT_FOUND).await, "not_found");
    // Outside /api/v1 the path space belongs to the web app: a bearer token is not a session
    // there, so `/` leads to its sign-in page, and an unknown path is its HTML 404.
    let root = app.get("/", &token).await;
    assert_eq!(root.url().path(), "/login", "303 to the sign-in page, followed");
    assert!(root.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let missing = app.get("/nope", &token).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let wrong_method = app.request(Method::PUT, "/api/v1/me", Some(&token), None).await;
    assert!(wrong_method.headers()["allow"].to_str().unwrap().contains("PATCH"));
    assert_eq!(error_code(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await, "method_not_allowed");
    let wrong_method = app.request(Method::DELETE, "/api/v1/activities", Some(&token), None).await;
    assert_eq!(error_code(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await, "method_not_allowed");
    for bad_id in ["not-a-uuid", "1", "%27%20OR%201%3D1"] {
        let path = format!("/api/v1/activities/{bad_id}");
        assert_eq!(error_code(app.get(&path, &token).await, StatusCode::NOT_FOUND).await, "not_found");
        assert_eq!(error_code(app.delete(&path, &token).await, StatusCode::NOT_FOUND).await, "not_found");
    }
    let response = app.get("/api/v1/me", &token).await;
    let request_id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(request_id.len(), 36, "a request id is minted and echoed");
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42", "a client's request id is kept");
}

async fn operational_endpoints_report_health_and_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("vera").await;
    app.get("/api/v1/me", &token).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let metrics = app.metrics().await;
    for expected in [
        "http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"200\"}",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/me\",status=\"200\",le=\"0.005\"}",
        "db_pool_connections{pool=",
        "state=\"in_use\"",
        "state=\"idle\"",
        "tokio_alive_tasks",
    ] {
        assert!(metrics.contains(expected), "metrics lack {expected}:\n{metrics}");
    }
}

/// The router and the document come from one route list (`stride_http::router`), so every
/// routed operation is documented by construction; this checks the other direction, through
/// the served document: every documented operation answers.
async fn every_documented_operation_is_routed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("walt").await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut operations = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path
                .replace("{id}", "01890000-0000-7000-8000-000000000000")
                .replace("{user_id}", "01890000-0000-7000-8000-000000000000")
                .replace("{username}", "nobody_here");
            let response = app.request(method.clone(), &concrete, Some(&token), None).await;
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if !path.contains('{') {
                assert_ne!(response.status(), StatusCode::NOT_FOUND, "{method} {path} is documented but not routed");
            }
            assert!(!operation["responses"].as_object().unwrap().is_empty(), "{method} {path} documents no response");
        }
    }
    assert_eq!(operations, 50, "the operations of the API and the probes (metrics have a listener of their own)");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["schemas"]["ActivityBody"].is_object(), "schemas are collected from the routes");
}

/// Sends only the head of a POST that announces `length` bytes of JSON, and returns the status
/// and body the server answers with.
async fn announce_body(app: &TestApp, path: &str, token: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}
