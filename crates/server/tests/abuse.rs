//! What an unauthenticated (or merely careless) client can make the server do, bounded: each
//! test is the regression test of a verified defect of the hardening issue.

mod common;

use chrono::{TimeDelta, Utc};
use common::{TestApp, error_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stride_repository::Backend;
use stride_services::ManualClock;

stride_repository::each_backend!(
    backend:
    a_burst_of_wrong_passwords_gets_five_401s_and_the_rest_429,
    a_lockout_ends_fifteen_minutes_after_the_fifth_failure_however_often_it_is_retried,
    registrations_are_limited_per_client_address,
    over_long_login_fields_are_refused_before_any_work,
    invented_methods_share_one_metric_series,
    a_leap_second_is_refused_and_changes_nothing,
    concurrent_profile_changes_are_both_kept,
);

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post("/api/v1/auth/login", None, json!({"username": username, "password": password})).await
}

async fn a_burst_of_wrong_passwords_gets_five_401s_and_the_rest_429(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("victim").await;
    let burst = (0..50).map(|_| login(&app, "victim", "not the password"));
    let statuses: Vec<u16> = futures::future::join_all(burst).await.iter().map(|r| r.status().as_u16()).collect();
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401), count(429)), (5, 45), "{statuses:?}");
}

async fn a_lockout_ends_fifteen_minutes_after_the_fifth_failure_however_often_it_is_retried(backend: Backend) {
    let clock = ManualClock::new(Utc::now());
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    app.register("victim").await;
    for _ in 0..5 {
        assert_eq!(login(&app, "victim", "wrong guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    for minute in 0..15 {
        let refused = login(&app, "victim", "correct horse battery").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "minute {minute}, the right password too");
        let retry_after: i64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry_after, (15 - minute) * 60, "minute {minute}: Retry-After is the real remainder");
        clock.advance(TimeDelta::minutes(1));
    }
    assert_eq!(login(&app, "victim", "correct horse battery").await.status(), StatusCode::OK);
}

async fn registrations_are_limited_per_client_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.registrations_per_hour = 3).await;
    for name in ["one", "two", "three"] {
        app.register(name).await;
    }
    let refused =
        app.post("/api/v1/auth/register", None, json!({"username": "four", "password": "long enough!"})).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // Refused before anything was written: the name is still free.
    let login = login(&app, "four", "long enough!").await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

async fn over_long_login_fields_are_refused_before_any_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "x".repeat(100_000);
    for body in [json!({"username": long, "password": "whatever"}), json!({"username": "victim", "password": long})] {
        let response = app.post("/api/v1/auth/login", None, body).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input");
    }
}

async fn invented_methods_share_one_metric_series(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let invented = "Q".repeat(5_000);
    for _ in 0..10 {
        let method = Method::from_bytes(invented.as_bytes()).unwrap();
        let response = app.client.request(method, app.url("/api/v1/me")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains(&invented[..100]), "an invented method became a label");
    assert!(metrics.contains("method=\"other\",route=\"/api/v1/me\",status=\"405\""), "{metrics}");
}

async fn a_leap_second_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("leaper").await;
    for started_at in ["2026-03-01T23:59:60+01:00", "1899-12-31T12:00:00Z", "2999-01-01T00:00:00Z"] {
        let body = json!({"sport": "run", "started_at": started_at, "duration_s": 60, "distance_m": 100.0});
        let response = app.post("/api/v1/activities", Some(&token), body).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input", "{started_at}");
    }
    let page: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let stats: Value = app.get("/api/v1/me/stats", &token).await.json().await.unwrap();
    assert_eq!(stats["total_activities"], 0);
}

/// Two PATCHes of different fields at once: each must keep the other's change (the read of the
/// profile locks the row, so neither writes back a stale copy of the field it did not send).
async fn concurrent_profile_changes_are_both_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("mover").await;
    for round in 0..15 {
        let name = format!("Mover {round}");
        let timezone = if round % 2 == 0 { "Asia/Tokyo" } else { "America/Denver" };
        let (a, b) = tokio::join!(
            app.patch("/api/v1/me", &token, json!({"display_name": name})),
            app.patch("/api/v1/me", &token, json!({"timezone": timezone})),
        );
        assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
        let me: Value = app.get("/api/v1/me", &token).await.json().await.unwrap();
        assert_eq!((me["display_name"].as_str(), me["timezone"].as_str()), (Some(name.as_str()), Some(timezone)));
    }
}
