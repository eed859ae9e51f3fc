//! Two real `stride serve` processes on one database, as two replicas behind a load balancer:
//! every abuse limit holds across them (the 6th failed login for one username from one address
//! is refused on whichever replica it lands; registrations and lookups likewise), and a form's
//! CSRF token made by one replica is accepted by the other (the key is shared too).

mod common;

use common::{StrideProcess, form_token, http_client_builder};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stride_repository::Backend;
use stride_repository::testing::TestDatabase;

stride_repository::each_backend!(backend: limits_and_csrf_keys_hold_across_two_replicas);

async fn limits_and_csrf_keys_hold_across_two_replicas(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let env = [
        ("STRIDE_TRUSTED_PROXY", "127.0.0.1"),
        ("STRIDE_REGISTRATIONS_PER_HOUR", "4"),
        ("STRIDE_LOOKUPS_PER_MINUTE", "4"),
    ];
    let replicas = [StrideProcess::start(&db, &env).await, StrideProcess::start(&db, &env).await];
    let client = http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |replica: &StrideProcess, path: &str, from: &str, body: Value| {
        client.post(replica.url(path)).header("x-forwarded-for", from).json(&body).send()
    };

    // Registrations from one address: 4 an hour across both replicas.
    let mut tokens = Vec::new();
    for (n, replica) in [0, 1, 0, 1].into_iter().enumerate() {
        let body = json!({"username": format!("member{n}"), "password": "correct horse battery"});
        let registered = post(&replicas[replica], "/api/v1/auth/register", "198.51.100.9", body).await.unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED, "registration {n}");
        let registered: Value = registered.json().await.unwrap();
        tokens.push(registered["token"].as_str().unwrap().to_owned());
    }
    for replica in &replicas {
        let body = json!({"username": "one_too_many", "password": "correct horse battery"});
        let refused = post(replica, "/api/v1/auth/register", "198.51.100.9", body).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "on {}", replica.base);
    }

    // Five failed logins for one username from one address, alternating replicas: the sixth is
    // refused on either, the right password too; the owner elsewhere signs in.
    let login = |password: &str| json!({"username": "member0", "password": password});
    for attempt in 0..5 {
        let failed = post(&replicas[attempt % 2], "/api/v1/auth/login", "203.0.113.5", login("a guess")).await.unwrap();
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    for replica in &replicas {
        let refused = post(replica, "/api/v1/auth/login", "203.0.113.5", login("correct horse battery")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "on {}", replica.base);
    }
    let owner = post(&replicas[1], "/api/v1/auth/login", "198.51.100.9", login("correct horse battery")).await.unwrap();
    assert_eq!(owner.status(), StatusCode::OK);

    // Username lookups by one user: 4 a minute across both.
    for n in 0..4 {
        let looked_up =
            client.get(replicas[n % 2].url("/api/v1/users/by-username/member1")).bearer_auth(&tokens[2]).send().await;
        assert_eq!(looked_up.unwrap().status(), StatusCode::OK, "lookup {n}");
    }
    let refused = client.get(replicas[1].url("/api/v1/users/by-username/member1")).bearer_auth(&tokens[2]).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);

    // A sign-in form rendered by one replica is accepted by the other.
    let page = client.get(replicas[0].url("/login")).send().await.unwrap();
    let nonce = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let token = form_token(&page.text().await.unwrap());
    let signed_in = client
        .post(replicas[1].url("/login"))
        .header("cookie", nonce)
        .header("x-forwarded-for", "198.51.100.10")
        .form(&[("csrf", token.as_str()), ("username", "member3"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the CSRF key is the same on both replicas");
}
