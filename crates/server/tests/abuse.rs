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
    failures_lock_out_one_address_not_the_owner_and_refill_one_attempt_per_three_minutes,
    one_address_cannot_starve_logins_with_made_up_usernames,
    a_username_guessed_from_many_addresses_is_slowed_not_locked,
    username_lookups_are_limited_per_user,
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

/// A login as sent through the trusted proxy (127.0.0.1) on behalf of `client`.
async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> reqwest::Response {
    let body = json!({"username": username, "password": password});
    let request = app.client.post(app.url("/api/v1/auth/login")).header("x-forwarded-for", client).json(&body);
    request.send().await.unwrap()
}

fn retry_after(response: &reqwest::Response) -> i64 {
    response.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

const PASSWORD: &str = "correct horse battery";

async fn failures_lock_out_one_address_not_the_owner_and_refill_one_attempt_per_three_minutes(backend: Backend) {
    let clock = ManualClock::new(Utc::now());
    let app =
        TestApp::spawn_with_clock_and(backend, clock.clone(), |c| c.trusted_proxy = Some([127, 0, 0, 1].into())).await;
    app.register("victim").await;
    let attacker = "203.0.113.9";
    for _ in 0..5 {
        assert_eq!(login_from(&app, attacker, "victim", "wrong guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = login_from(&app, attacker, "victim", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the right password too, from that address");
    assert_eq!(retry_after(&refused), 180, "5 per 15 minutes: one attempt back every 3 minutes");
    // The owner, elsewhere, is not locked out of their own account.
    assert_eq!(login_from(&app, "198.51.100.1", "victim", PASSWORD).await.status(), StatusCode::OK);
    // Refusals did not extend the wait: three minutes after, exactly one more attempt.
    clock.advance(TimeDelta::minutes(3));
    assert_eq!(login_from(&app, attacker, "victim", "wrong again").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login_from(&app, attacker, "victim", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // IPv6 clients are one client per /64: a new address in the same /64 is the same client.
    for _ in 0..5 {
        let r = login_from(&app, "2001:db8:7:7::1", "victim", "wrong guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let same_64 = login_from(&app, "2001:db8:7:7:ffff:ffff:ffff:fffe", "victim", PASSWORD).await;
    assert_eq!(same_64.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&app, "2001:db8:7:8::1", "victim", PASSWORD).await.status(), StatusCode::OK);
}

async fn one_address_cannot_starve_logins_with_made_up_usernames(backend: Backend) {
    let tweak = |c: &mut stride_server::Config| {
        c.trusted_proxy = Some([127, 0, 0, 1].into());
        c.logins_per_minute = 10;
        c.hash_concurrency = Some(1);
    };
    let app = TestApp::spawn_with(backend, tweak).await;
    app.register("owner").await;
    let names: Vec<String> = (0..200).map(|i| format!("made-up-{i}")).collect();
    let flood = names.iter().map(|name| login_from(&app, "203.0.113.50", name, "whatever it is"));
    let statuses: Vec<u16> = futures::future::join_all(flood).await.iter().map(|r| r.status().as_u16()).collect();
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401) + count(503), count(429)), (10, 190), "only the address's 10 tokens reach hashing");
    assert_eq!(login_from(&app, "203.0.113.50", "owner", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&app, "198.51.100.7", "owner", PASSWORD).await.status(), StatusCode::OK);
}

async fn a_username_guessed_from_many_addresses_is_slowed_not_locked(backend: Backend) {
    let clock = ManualClock::new(Utc::now());
    let app =
        TestApp::spawn_with_clock_and(backend, clock.clone(), |c| c.trusted_proxy = Some([127, 0, 0, 1].into())).await;
    app.register("victim").await;
    for i in 0..50 {
        let r = login_from(&app, &format!("203.0.113.{i}"), "victim", "a guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Past the ceiling of 50 per 15 minutes, one attempt per 18 s gets through, from anywhere.
    let refused = login_from(&app, "198.51.100.1", "victim", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&refused), 18);
    clock.advance(TimeDelta::seconds(18));
    assert_eq!(login_from(&app, "198.51.100.1", "victim", PASSWORD).await.status(), StatusCode::OK);
}

async fn username_lookups_are_limited_per_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.lookups_per_minute = 5).await;
    let (token, _) = app.register("seeker").await;
    app.register("someone").await;
    for i in 0..5 {
        let name = if i % 2 == 0 { "someone".to_owned() } else { format!("nobody{i}") };
        let r = app.get(&format!("/api/v1/users/by-username/{name}"), &token).await;
        assert!([200, 404].contains(&r.status().as_u16()), "{}", r.status());
    }
    let refused = app.get("/api/v1/users/by-username/someone", &token).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused, StatusCode::TOO_MANY_REQUESTS).await, "too_many_attempts");
    let (other, _) = app.register("another").await;
    let theirs = app.get("/api/v1/users/by-username/someone", &other).await;
    assert_eq!(theirs.status(), StatusCode::OK, "per user");
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
    let metrics = app.metrics().await;
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
