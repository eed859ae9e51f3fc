//! Weather over HTTP, against a local stub of the archive API: `start_latlng` is validated,
//! shown to the owner only, and its weather is looked up by the server's own job runner;
//! `weather` and `weather_status` follow PATCH; with the feature off nothing is looked up.

mod common;

use std::time::Duration;

use common::{TestApp, error_code, run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stride_repository::Backend;
use stride_server::jobs_cli::{self, JobsRequest};
use stride_services::weather_stub::{StubMode, WeatherStub};

stride_repository::each_backend!(
    backend:
    the_weather_at_the_start_is_looked_up_and_shown_to_whoever_may_see_the_activity,
    a_start_point_is_validated_and_changes_nothing_when_refused,
    with_the_feature_off_a_start_point_is_kept_and_nothing_is_looked_up,
    an_operator_cancels_a_hanging_lookup_then_retries_it_from_the_cli,
    three_creates_and_ten_patches_while_the_api_fails_make_at_most_three_calls,
);

async fn app_with_weather(backend: Backend, stub: &WeatherStub) -> TestApp {
    let url = stub.url.clone();
    TestApp::spawn_with(backend, move |config| {
        config.weather_url = Some(url);
        config.weather_timeout_ms = 500;
        config.weather_retry_ms = 10;
    })
    .await
}

/// Reads the activity until its weather settles (the server's runner polls every second).
async fn settled(app: &TestApp, token: &str, id: &str) -> Value {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = app.get(&format!("/api/v1/activities/{id}"), token).await.json().await.unwrap();
        if body["weather_status"] != "pending" {
            return body;
        }
        assert!(tokio::time::Instant::now() < give_up, "the weather never settled: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_weather_at_the_start_is_looked_up_and_shown_to_whoever_may_see_the_activity(backend: Backend) {
    let stub = WeatherStub::start().await;
    let app = app_with_weather(backend, &stub).await;
    let (owner, _) = app.register("wanderer").await;
    let (other, _) = app.register("onlooker").await;
    let mut body = run("2026-03-01T07:20:00+01:00");
    body["start_latlng"] = json!([48.8566, 2.3322]);
    body["visibility"] = json!("public");
    let created = app.create_activity(&owner, body).await;
    assert_eq!(created["start_latlng"], json!([48.8566, 2.3322]));
    assert_eq!((created["weather_status"].as_str(), &created["weather"]), (Some("pending"), &Value::Null));
    let id = created["id"].as_str().unwrap();

    let done = settled(&app, &owner, id).await;
    assert_eq!(done["weather_status"], "done", "{done}");
    assert_eq!(
        done["weather"],
        json!({
            "temperature_c": 6.5,
            "wind_speed_ms": 3.25,
            "precipitation_mm": 0.4,
            "code": 61,
            "observed_at": "2026-03-01T06:00:00Z",
            "source": "api",
        })
    );
    // Someone else sees the weather of a public activity, never where it started.
    let seen: Value = app.get(&format!("/api/v1/activities/{id}"), &other).await.json().await.unwrap();
    assert_eq!((&seen["start_latlng"], &seen["weather"]), (&Value::Null, &done["weather"]));
    assert_eq!(seen["weather_status"], "done");
    let page: Value = app
        .get(&format!("/api/v1/users/{}/activities", done["user_id"].as_str().unwrap()), &other)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["start_latlng"], Value::Null);

    // PATCH null clears the start and the weather.
    let cleared = app.patch(&format!("/api/v1/activities/{id}"), &owner, json!({"start_latlng": null})).await;
    assert_eq!(cleared.status(), StatusCode::OK);
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(
        (&cleared["start_latlng"], &cleared["weather"], cleared["weather_status"].as_str()),
        (&Value::Null, &Value::Null, Some("none"))
    );
    // A PATCH that leaves it out leaves it alone; a new start looks the weather up again.
    let moved = app.patch(&format!("/api/v1/activities/{id}"), &owner, json!({"start_latlng": [48.86, 2.33]})).await;
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(
        (moved["start_latlng"].clone(), moved["weather_status"].as_str()),
        (json!([48.86, 2.33]), Some("pending"))
    );
    let again = settled(&app, &owner, id).await;
    assert_eq!((again["weather_status"].as_str(), again["weather"]["source"].as_str()), (Some("done"), Some("cached")));
    assert_eq!(stub.calls(), 1, "the same place and hour came from the cache");
    let renamed: Value =
        app.patch(&format!("/api/v1/activities/{id}"), &owner, json!({"title": "Loop"})).await.json().await.unwrap();
    assert_eq!(
        (renamed["start_latlng"].clone(), renamed["weather"].clone()),
        (json!([48.86, 2.33]), again["weather"].clone())
    );
    app.shutdown().await.unwrap();
}

async fn a_start_point_is_validated_and_changes_nothing_when_refused(backend: Backend) {
    let stub = WeatherStub::start().await;
    let app = app_with_weather(backend, &stub).await;
    let (token, _) = app.register("pedant").await;
    for bad in [json!([91.0, 0.0]), json!([0.0, 180.5]), json!([1.0]), json!([1.0, 2.0, 3.0]), json!([])] {
        let mut body = run("2026-03-01T07:00:00Z");
        body["start_latlng"] = bad.clone();
        let response = app.post("/api/v1/activities", Some(&token), body).await;
        assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input", "{bad}");
    }
    let listed: Value = app.get("/api/v1/activities", &token).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was created");
    let created = app.create_activity(&token, run("2026-03-01T07:00:00Z")).await;
    assert_eq!((&created["start_latlng"], created["weather_status"].as_str()), (&Value::Null, Some("none")));
    let id = created["id"].as_str().unwrap();
    let refused = app.patch(&format!("/api/v1/activities/{id}"), &token, json!({"start_latlng": [0.0, -200.0]})).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let kept: Value = app.get(&format!("/api/v1/activities/{id}"), &token).await.json().await.unwrap();
    assert_eq!((&kept["start_latlng"], kept["weather_status"].as_str()), (&Value::Null, Some("none")));
    assert_eq!(stub.calls(), 0);
    app.shutdown().await.unwrap();
}

async fn with_the_feature_off_a_start_point_is_kept_and_nothing_is_looked_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.register("offline").await;
    let mut body = run("2026-03-01T07:00:00Z");
    body["start_latlng"] = json!([-33.87, 151.21]);
    let created = app.create_activity(&token, body).await;
    assert_eq!(created["start_latlng"], json!([-33.87, 151.21]));
    assert_eq!((created["weather_status"].as_str(), &created["weather"]), (Some("none"), &Value::Null));
    app.shutdown().await.unwrap();
}

async fn an_operator_cancels_a_hanging_lookup_then_retries_it_from_the_cli(backend: Backend) {
    let stub = WeatherStub::start().await;
    stub.set(StubMode::Hang);
    let url = stub.url.clone();
    let mut cli = None;
    let app = TestApp::spawn_with(backend, |config| {
        config.weather_url = Some(url);
        config.weather_timeout_ms = 500;
        config.weather_retry_ms = 60_000;
        cli = Some(config.clone());
    })
    .await;
    // The operator's commands read the server's own configuration.
    let cli = cli.unwrap();
    let (owner, _) = app.register("operator_watch").await;
    let mut body = run("2026-03-01T07:20:00+01:00");
    body["start_latlng"] = json!([48.8566, 2.3322]);
    let created = app.create_activity(&owner, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["weather_status"], "pending");

    let listed =
        jobs_cli::run(cli.clone(), JobsRequest::List { state: None, kind: Some("weather.enrich".into()), limit: 10 })
            .await
            .unwrap();
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    let job = rows[0].split_whitespace().next().unwrap().to_owned();

    // Cancelled, the lookup will never answer: the weather is unavailable, not pending for good.
    let cancelled = jobs_cli::run(cli.clone(), JobsRequest::Cancel { id: job.clone() }).await.unwrap();
    assert_eq!(cancelled, format!("job {job} cancelled; its activity's weather is now unavailable\n"));
    let seen: Value = app.get(&format!("/api/v1/activities/{id}"), &owner).await.json().await.unwrap();
    assert_eq!((&seen["weather_status"], &seen["weather"]), (&json!("unavailable"), &Value::Null));

    // Retried once the API answers again: the server's runner looks it up anew.
    stub.set(StubMode::Answer);
    let retried = jobs_cli::run(cli.clone(), JobsRequest::Retry { id: job.clone() }).await.unwrap();
    assert!(retried.contains("available again"), "{retried}");
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let body: Value = app.get(&format!("/api/v1/activities/{id}"), &owner).await.json().await.unwrap();
        if body["weather_status"] == "done" {
            break body;
        }
        assert_eq!(body["weather_status"], "unavailable", "until the retry answers: {body}");
        assert!(tokio::time::Instant::now() < give_up, "the retried lookup never finished: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["weather"]["source"], "api");
    assert_eq!(done["weather"]["temperature_c"], 6.5);
    app.shutdown().await.unwrap();
}

async fn three_creates_and_ten_patches_while_the_api_fails_make_at_most_three_calls(backend: Backend) {
    // The sequence that once made 65 calls (55 of them the same URL): 3 creates and 10 PATCHes
    // of one activity at one place, while the API fails, each lookup allowed 5 attempts.
    let stub = WeatherStub::start().await;
    stub.set(StubMode::Fail);
    let app = app_with_weather(backend, &stub).await;
    let (token, _) = app.register("budgeted").await;
    let mut ids = Vec::new();
    for hour in 6..9 {
        let mut body = run(&format!("2026-03-01T0{hour}:20:00Z"));
        body["start_latlng"] = json!([48.8566, 2.3322]);
        ids.push(app.create_activity(&token, body).await["id"].as_str().unwrap().to_owned());
    }
    for step in 0..10 {
        let moved = json!({"start_latlng": [48.8566, 2.3322 + f64::from(step % 2) * 0.0001]});
        let patched = app.patch(&format!("/api/v1/activities/{}", ids[0]), &token, moved).await;
        assert_eq!(patched.status(), StatusCode::OK);
    }
    for id in &ids {
        let body = settled(&app, &token, id).await;
        assert_eq!(body["weather_status"], "unavailable", "{body}");
    }
    assert!(stub.calls() <= 3, "{} calls to the weather API", stub.calls());
    app.shutdown().await.unwrap();
}
