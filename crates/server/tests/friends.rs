//! Friends, blocks and the feed over HTTP, on both backends: the whole flow two people go
//! through, every refusal the contract names, races between the two sides, and paging a feed
//! while others write.

mod common;

use std::collections::HashSet;

use common::{TestApp, error_code, error_message, run};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stride_repository::Backend;

stride_repository::each_backend!(
    backend:
    two_people_find_each_other_become_friends_and_see_friends_only_things,
    requests_are_refused_as_the_contract_says,
    only_the_right_side_may_accept_decline_or_cancel,
    a_block_hides_everything_both_ways_and_ends_the_friendship,
    asking_each_other_at_once_makes_friends_exactly_once,
    accept_racing_cancel_leaves_one_consistent_outcome,
    both_ending_a_friendship_at_once_ends_it_once,
    the_feed_merges_pages_and_survives_concurrent_writes,
    feed_and_list_parameters_are_validated,
    limits_answer_409_and_429,
);

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// `from` asks `to_username`; returns the request.
async fn ask(app: &TestApp, from: &str, to_username: &str) -> Value {
    json_of(
        app.post("/api/v1/friends/requests", Some(from), json!({"username": to_username})).await,
        StatusCode::CREATED,
    )
    .await
}

async fn befriend(app: &TestApp, a: &str, b: &str, b_username: &str) {
    let request = ask(app, a, b_username).await;
    let path = format!("/api/v1/friends/requests/{}/accept", id(&request));
    json_of(app.post(&path, Some(b), json!({})).await, StatusCode::OK).await;
}

fn activity(started_at: &str, visibility: &str) -> Value {
    let mut body = run(started_at);
    body["visibility"] = json!(visibility);
    body
}

async fn two_people_find_each_other_become_friends_and_see_friends_only_things(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, ann_user) = app.register("ann").await;
    let (ben, ben_user) = app.register("ben").await;
    let ann_friends_only = id(&app.create_activity(&ann, activity("2026-03-01T08:00:00Z", "friends")).await);
    let ann_private = id(&app.create_activity(&ann, activity("2026-03-02T08:00:00Z", "private")).await);
    let ann_public = id(&app.create_activity(&ann, activity("2026-03-03T08:00:00Z", "public")).await);
    let ben_friends_only = id(&app.create_activity(&ben, activity("2026-03-01T09:00:00Z", "friends")).await);

    // Finding people.
    let profile = json_of(app.get("/api/v1/users/by-username/ann", &ben).await, StatusCode::OK).await;
    assert_eq!(profile, json!({"id": ann_user["id"], "username": "ann", "display_name": ann_user["display_name"]}));
    let missing = app.get("/api/v1/users/by-username/nobody_here", &ben).await;
    assert_eq!(error_code(missing, StatusCode::NOT_FOUND).await, "not_found");

    // Strangers: public only, and no stats.
    let ann_id = ann_user["id"].as_str().unwrap();
    let ben_id = ben_user["id"].as_str().unwrap();
    let seen = json_of(app.get(&format!("/api/v1/users/{ann_id}/activities"), &ben).await, StatusCode::OK).await;
    assert_eq!(ids(&seen), vec![ann_public.clone()]);
    let path = format!("/api/v1/activities/{ann_friends_only}");
    assert_eq!(app.get(&path, &ben).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/users/{ann_id}/stats"), &ben).await.status(), StatusCode::NOT_FOUND);

    // Ben asks; Ann sees it incoming, Ben outgoing; Ann accepts.
    let request = ask(&app, &ben, "ann").await;
    assert_eq!(request["from"]["username"], "ben");
    assert_eq!(request["to"]["username"], "ann");
    assert!(request["created_at"].is_string());
    let incoming = json_of(app.get("/api/v1/friends/requests?direction=incoming", &ann).await, StatusCode::OK).await;
    assert_eq!(incoming["items"][0]["id"], request["id"]);
    assert_eq!(incoming["next_cursor"], Value::Null);
    let outgoing = json_of(app.get("/api/v1/friends/requests?direction=outgoing", &ben).await, StatusCode::OK).await;
    assert_eq!(outgoing["items"][0]["id"], request["id"]);
    let accept = format!("/api/v1/friends/requests/{}/accept", id(&request));
    let friendship = json_of(app.post(&accept, Some(&ann), json!({})).await, StatusCode::OK).await;
    assert_eq!(friendship["user"]["username"], "ben");
    assert!(friendship["since"].is_string());
    let pending = json_of(app.get("/api/v1/friends/requests", &ann).await, StatusCode::OK).await;
    assert_eq!(pending["items"], json!([]));

    // Friends now: friends-only things, friends-scope stats, and the merged feed.
    let ann_friends = json_of(app.get("/api/v1/friends", &ann).await, StatusCode::OK).await;
    assert_eq!(ann_friends["items"][0]["user"]["username"], "ben");
    let ben_friends = json_of(app.get("/api/v1/friends", &ben).await, StatusCode::OK).await;
    assert_eq!(ben_friends["items"][0]["user"]["id"], json!(ann_id));
    assert_eq!(app.get(&path, &ben).await.status(), StatusCode::OK);
    let private = format!("/api/v1/activities/{ann_private}");
    assert_eq!(app.get(&private, &ben).await.status(), StatusCode::NOT_FOUND);
    let seen = json_of(app.get(&format!("/api/v1/users/{ann_id}/activities"), &ben).await, StatusCode::OK).await;
    assert_eq!(ids(&seen), vec![ann_public.clone(), ann_friends_only.clone()]);
    let stats = json_of(app.get(&format!("/api/v1/users/{ann_id}/stats"), &ben).await, StatusCode::OK).await;
    assert_eq!(stats["total_activities"], 2, "friends count friends + public, never private");
    let feed = json_of(app.get("/api/v1/feed", &ben).await, StatusCode::OK).await;
    assert_eq!(ids(&feed), vec![ann_public.clone(), ben_friends_only.clone(), ann_friends_only.clone()]);
    assert_eq!(
        feed["items"][0]["author"],
        json!({"id": ann_id, "username": "ann", "display_name": ann_user["display_name"]})
    );
    assert_eq!(feed["items"][1]["author"]["id"], json!(ben_id));
    assert_eq!(feed["items"][0]["photo_count"], 0);
    let ann_feed = json_of(app.get("/api/v1/feed", &ann).await, StatusCode::OK).await;
    assert_eq!(ann_feed["items"].as_array().unwrap().len(), 4, "her own private one included");

    // Either side ends it, at once.
    assert_eq!(app.delete(&format!("/api/v1/friends/{ann_id}"), &ben).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &ben).await.status(), StatusCode::NOT_FOUND);
    let feed = json_of(app.get("/api/v1/feed", &ben).await, StatusCode::OK).await;
    assert_eq!(ids(&feed), vec![ben_friends_only]);
    assert_eq!(app.delete(&format!("/api/v1/friends/{ben_id}"), &ann).await.status(), StatusCode::NOT_FOUND);
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(id).collect()
}

async fn requests_are_refused_as_the_contract_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (cat, _) = app.register("cat").await;
    let (dan, _) = app.register("dan").await;
    async fn post(app: &TestApp, token: &str, username: &str) -> reqwest::Response {
        app.post("/api/v1/friends/requests", Some(token), json!({"username": username})).await
    }
    assert_eq!(error_code(post(&app, &cat, "cat").await, StatusCode::UNPROCESSABLE_ENTITY).await, "invalid_input");
    assert_eq!(error_code(post(&app, &cat, "nobody_here").await, StatusCode::NOT_FOUND).await, "not_found");
    assert_eq!(error_code(post(&app, &cat, "Not A Name!").await, StatusCode::NOT_FOUND).await, "not_found");
    let missing_field = app.post("/api/v1/friends/requests", Some(&cat), json!({})).await;
    assert_eq!(missing_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
    ask(&app, &cat, "dan").await;
    assert_eq!(error_code(post(&app, &cat, "dan").await, StatusCode::CONFLICT).await, "request_pending");
    // Dan asking back makes them friends: 200 with the friendship.
    let friendship = json_of(post(&app, &dan, "cat").await, StatusCode::OK).await;
    assert_eq!(friendship["user"]["username"], "cat");
    assert_eq!(error_code(post(&app, &cat, "dan").await, StatusCode::CONFLICT).await, "already_friends");
    assert_eq!(error_code(post(&app, &dan, "cat").await, StatusCode::CONFLICT).await, "already_friends");
    let unauthenticated = app.post("/api/v1/friends/requests", None, json!({"username": "dan"})).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

async fn only_the_right_side_may_accept_decline_or_cancel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (eve, _) = app.register("eve").await;
    let (fay, _) = app.register("fay").await;
    let (gus, _) = app.register("gus").await;
    let request = ask(&app, &eve, "fay").await;
    let base = format!("/api/v1/friends/requests/{}", id(&request));
    // Nobody else's request: 404 for the third person, the sender accepting, the recipient cancelling.
    assert_eq!(app.post(&format!("{base}/accept"), Some(&gus), json!({})).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.post(&format!("{base}/accept"), Some(&eve), json!({})).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.post(&format!("{base}/decline"), Some(&eve), json!({})).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&base, &fay).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&base, &gus).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.post("/api/v1/friends/requests/not-an-id/accept", Some(&fay), json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    // The recipient declines: gone for both.
    assert_eq!(app.post(&format!("{base}/decline"), Some(&fay), json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.post(&format!("{base}/accept"), Some(&fay), json!({})).await.status(), StatusCode::NOT_FOUND);
    // Eve may ask again, then cancel.
    let again = ask(&app, &eve, "fay").await;
    let base = format!("/api/v1/friends/requests/{}", id(&again));
    assert_eq!(app.delete(&base, &eve).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&base, &eve).await.status(), StatusCode::NOT_FOUND);
    let friends = json_of(app.get("/api/v1/friends", &fay).await, StatusCode::OK).await;
    assert_eq!(friends["items"], json!([]));
}

async fn a_block_hides_everything_both_ways_and_ends_the_friendship(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (hal, hal_user) = app.register("hal").await;
    let (ida, ida_user) = app.register("ida").await;
    let hal_id = hal_user["id"].as_str().unwrap().to_owned();
    let ida_id = ida_user["id"].as_str().unwrap().to_owned();
    befriend(&app, &hal, &ida, "ida").await;
    let hal_public = id(&app.create_activity(&hal, activity("2026-03-01T08:00:00Z", "public")).await);
    let ida_public = id(&app.create_activity(&ida, activity("2026-03-01T09:00:00Z", "public")).await);

    let blocked =
        json_of(app.post("/api/v1/blocks", Some(&hal), json!({"user_id": ida_id})).await, StatusCode::CREATED).await;
    assert_eq!(blocked["user"]["username"], "ida");
    let again = json_of(app.post("/api/v1/blocks", Some(&hal), json!({"user_id": ida_id})).await, StatusCode::OK).await;
    assert_eq!(again["since"], blocked["since"], "blocking again changes nothing");
    let list = json_of(app.get("/api/v1/blocks", &hal).await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["user"]["id"], json!(ida_id));
    assert!(list["items"][0]["since"].is_string());

    // Both ways, public things included, answered as if nothing existed.
    for (viewer, owner, owner_name, thing) in [(&ida, &hal_id, "hal", &hal_public), (&hal, &ida_id, "ida", &ida_public)]
    {
        assert_eq!(app.get(&format!("/api/v1/activities/{thing}"), viewer).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get(&format!("/api/v1/users/{owner}/activities"), viewer).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.get(&format!("/api/v1/users/{owner}/stats"), viewer).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            app.get(&format!("/api/v1/activities/{thing}/photos"), viewer).await.status(),
            StatusCode::NOT_FOUND
        );
        let profile = app.get(&format!("/api/v1/users/by-username/{owner_name}"), viewer).await;
        assert_eq!(profile.status(), StatusCode::NOT_FOUND);
        let request = app.post("/api/v1/friends/requests", Some(viewer), json!({"username": owner_name})).await;
        assert_eq!(error_code(request, StatusCode::NOT_FOUND).await, "not_found", "the same answer as no such user");
    }
    let friends = json_of(app.get("/api/v1/friends", &ida).await, StatusCode::OK).await;
    assert_eq!(friends["items"], json!([]), "the block ended the friendship");
    let feed = json_of(app.get("/api/v1/feed", &ida).await, StatusCode::OK).await;
    assert_eq!(ids(&feed), vec![ida_public.clone()]);

    // Ida renames herself and blocks hal back: from then on hal's answers name her by id only.
    let renamed = app.patch("/api/v1/me", &ida, json!({"display_name": "Ida the Hidden"})).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let back =
        json_of(app.post("/api/v1/blocks", Some(&ida), json!({"user_id": hal_id})).await, StatusCode::CREATED).await;
    assert_eq!(back["user"], json!({"id": hal_id}), "hal blocked ida first: ida learns only his id");
    let again = json_of(app.post("/api/v1/blocks", Some(&hal), json!({"user_id": ida_id})).await, StatusCode::OK).await;
    assert_eq!(again["user"], json!({"id": ida_id}));
    let list = json_of(app.get("/api/v1/blocks", &hal).await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["user"], json!({"id": ida_id}), "neither her name nor her new display name");
    assert_eq!(app.delete(&format!("/api/v1/blocks/{hal_id}"), &ida).await.status(), StatusCode::NO_CONTENT);
    let list = json_of(app.get("/api/v1/blocks", &hal).await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["user"]["display_name"], "Ida the Hidden", "one-way again: shown as she is");

    // Blocking yourself, or nobody.
    let me = app.post("/api/v1/blocks", Some(&hal), json!({"user_id": hal_id})).await;
    assert_eq!(me.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let nobody =
        app.post("/api/v1/blocks", Some(&hal), json!({"user_id": stride_domain::UserId::new().to_string()})).await;
    assert_eq!(nobody.status(), StatusCode::NOT_FOUND);
    // Only the blocker may lift it; lifting it brings no friendship back, but public is public again.
    assert_eq!(app.delete(&format!("/api/v1/blocks/{hal_id}"), &ida).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/blocks/{ida_id}"), &hal).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/activities/{hal_public}"), &ida).await.status(), StatusCode::OK);
    let friends = json_of(app.get("/api/v1/friends", &ida).await, StatusCode::OK).await;
    assert_eq!(friends["items"], json!([]));
}

async fn asking_each_other_at_once_makes_friends_exactly_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.registrations_per_hour = 1_000).await;
    for round in 0..8 {
        let (a_name, b_name) = (format!("racer_a{round}"), format!("racer_b{round}"));
        let (a, _) = app.register(&a_name).await;
        let (b, _) = app.register(&b_name).await;
        let (first, second) = tokio::join!(
            app.post("/api/v1/friends/requests", Some(&a), json!({"username": b_name})),
            app.post("/api/v1/friends/requests", Some(&b), json!({"username": a_name})),
        );
        let mut statuses = [first.status(), second.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "one asked, the other accepted");
        for token in [&a, &b] {
            let friends = json_of(app.get("/api/v1/friends", token).await, StatusCode::OK).await;
            assert_eq!(friends["items"].as_array().unwrap().len(), 1);
            for direction in ["incoming", "outgoing"] {
                let path = format!("/api/v1/friends/requests?direction={direction}");
                let pending = json_of(app.get(&path, token).await, StatusCode::OK).await;
                assert_eq!(pending["items"], json!([]), "no request left behind");
            }
        }
    }
}

async fn accept_racing_cancel_leaves_one_consistent_outcome(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.registrations_per_hour = 1_000).await;
    for round in 0..8 {
        let (a, _) = app.register(&format!("sender{round}")).await;
        let recipient = format!("recipient{round}");
        let (b, _) = app.register(&recipient).await;
        let request = ask(&app, &a, &recipient).await;
        let base = format!("/api/v1/friends/requests/{}", id(&request));
        let accept = format!("{base}/accept");
        let (accepted, cancelled) = tokio::join!(app.post(&accept, Some(&b), json!({})), app.delete(&base, &a));
        let friends = json_of(app.get("/api/v1/friends", &a).await, StatusCode::OK).await;
        let count = friends["items"].as_array().unwrap().len();
        match (accepted.status(), cancelled.status()) {
            (StatusCode::OK, StatusCode::NOT_FOUND) => assert_eq!(count, 1),
            (StatusCode::NOT_FOUND, StatusCode::NO_CONTENT) => assert_eq!(count, 0),
            other => panic!("exactly one of accept and cancel wins, got {other:?}"),
        }
    }
}

async fn both_ending_a_friendship_at_once_ends_it_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.registrations_per_hour = 1_000).await;
    for round in 0..8 {
        let (a_name, b_name) = (format!("parting_a{round}"), format!("parting_b{round}"));
        let (a, a_user) = app.register(&a_name).await;
        let (b, b_user) = app.register(&b_name).await;
        befriend(&app, &a, &b, &b_name).await;
        let (a_id, b_id) = (a_user["id"].as_str().unwrap(), b_user["id"].as_str().unwrap());
        let (unfriend_b, unfriend_a) = (format!("/api/v1/friends/{b_id}"), format!("/api/v1/friends/{a_id}"));
        let (by_a, by_b) = tokio::join!(app.delete(&unfriend_b, &a), app.delete(&unfriend_a, &b));
        let mut statuses = [by_a.status(), by_b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND], "ended once");
        for token in [&a, &b] {
            let friends = json_of(app.get("/api/v1/friends", token).await, StatusCode::OK).await;
            assert_eq!(friends["items"], json!([]));
        }
        // And they may start over.
        befriend(&app, &b, &a, &a_name).await;
    }
}

async fn the_feed_merges_pages_and_survives_concurrent_writes(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        // Small chunks: a few friends already make several concurrent chunk queries.
        config.feed_chunk_size = 2;
        config.registrations_per_hour = 1_000;
    })
    .await;
    let (me, _) = app.register("reader").await;
    let mut writers = Vec::new();
    for i in 0..5 {
        let name = format!("writer{i}");
        let (token, _) = app.register(&name).await;
        befriend(&app, &me, &token, &name).await;
        writers.push(token);
    }
    let (stranger, _) = app.register("stranger").await;
    let mut expected = HashSet::new();
    for (i, token) in writers.iter().enumerate() {
        for day in 0..8 {
            let visibility = ["friends", "public", "private"][(i + day) % 3];
            // Same instants across writers: ties broken by id.
            let created =
                app.create_activity(token, activity(&format!("2026-02-{:02}T07:00:00Z", day + 1), visibility)).await;
            if visibility != "private" {
                expected.insert(id(&created));
            }
        }
    }
    app.create_activity(&stranger, activity("2026-02-03T07:00:00Z", "public")).await;

    // Page through with 3 per page while writers add above the cursor and delete below it.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut deleted = HashSet::new();
    let mut added = HashSet::new();
    let mut page_number = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/feed?limit=3".to_owned(),
            Some(c) => format!("/api/v1/feed?limit=3&cursor={c}"),
        };
        let page = json_of(app.get(&path, &me).await, StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        for item in items {
            seen.push((item["started_at"].as_str().unwrap().to_owned(), id(item)));
        }
        // A newer activity lands above every cursor; it must not show on this walk.
        let writer = &writers[page_number % writers.len()];
        added.insert(id(&app.create_activity(writer, activity("2026-03-01T07:00:00Z", "public")).await));
        page_number += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        // Delete one not-yet-seen item below the cursor, now and then; the walk may then skip it.
        if page_number % 4 == 0 {
            let victim =
                expected.iter().find(|id| !seen.iter().any(|(_, s)| s == *id) && !deleted.contains(*id)).cloned();
            if let Some(victim) = victim {
                for token in &writers {
                    if app.delete(&format!("/api/v1/activities/{victim}"), token).await.status()
                        == StatusCode::NO_CONTENT
                    {
                        deleted.insert(victim.clone());
                        break;
                    }
                }
            }
        }
    }
    let seen_ids: Vec<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    let unique: HashSet<&String> = seen_ids.iter().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no duplicates across pages");
    for id in &expected {
        assert!(unique.contains(id) || deleted.contains(id), "{id} existed before paging and was skipped");
    }
    for id in &added {
        assert!(!unique.contains(id), "an item inserted above the cursor showed up mid-walk");
    }
    // Newest first across page boundaries.
    let instants: Vec<&String> = seen.iter().map(|(at, _)| at).collect();
    assert!(instants.windows(2).all(|w| w[0] >= w[1]), "{instants:?}");
    // A refresh shows what was added.
    let fresh = json_of(app.get("/api/v1/feed?limit=100", &me).await, StatusCode::OK).await;
    let fresh: HashSet<String> = ids(&fresh).into_iter().collect();
    assert!(added.iter().all(|id| fresh.contains(id)));
}

async fn feed_and_list_parameters_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (jo, _) = app.register("jojo").await;
    for path in [
        "/api/v1/feed?limit=0",
        "/api/v1/feed?limit=101",
        "/api/v1/feed?limit=abc",
        "/api/v1/feed?cursor=garbled",
        "/api/v1/friends?limit=0",
        "/api/v1/friends?cursor=garbled",
        "/api/v1/blocks?limit=500",
        "/api/v1/friends/requests?direction=sideways",
    ] {
        assert_eq!(app.get(path, &jo).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    let empty = json_of(app.get("/api/v1/feed", &jo).await, StatusCode::OK).await;
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
    // An activity cursor is not a list cursor.
    app.create_activity(&jo, run("2026-01-01T07:00:00Z")).await;
    app.create_activity(&jo, run("2026-01-02T07:00:00Z")).await;
    let page = json_of(app.get("/api/v1/feed?limit=1", &jo).await, StatusCode::OK).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let path = format!("/api/v1/friends?cursor={cursor}");
    assert_eq!(app.get(&path, &jo).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let next = json_of(app.get(&format!("/api/v1/feed?limit=1&cursor={cursor}"), &jo).await, StatusCode::OK).await;
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert_eq!(next["next_cursor"], Value::Null);
}

async fn limits_answer_409_and_429(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.max_pending_friend_requests = 2;
        config.friend_requests_per_day = 3;
        config.max_friends = 1;
        config.registrations_per_hour = 1_000;
    })
    .await;
    let (kim, _) = app.register("kim").await;
    let mut others = Vec::new();
    for i in 0..5 {
        let name = format!("other{i}");
        others.push((app.register(&name).await.0, name));
    }
    ask(&app, &kim, &others[0].1).await;
    ask(&app, &kim, &others[1].1).await;
    let third = app.post("/api/v1/friends/requests", Some(&kim), json!({"username": others[2].1})).await;
    assert_eq!(error_code(third, StatusCode::CONFLICT).await, "limit_reached");
    // Cancelling frees a pending slot but not the daily count: the third send is the last today.
    let outgoing = json_of(app.get("/api/v1/friends/requests?direction=outgoing", &kim).await, StatusCode::OK).await;
    let cancel = format!("/api/v1/friends/requests/{}", id(&outgoing["items"][0]));
    assert_eq!(app.delete(&cancel, &kim).await.status(), StatusCode::NO_CONTENT);
    ask(&app, &kim, &others[2].1).await;
    let outgoing = json_of(app.get("/api/v1/friends/requests?direction=outgoing", &kim).await, StatusCode::OK).await;
    let cancel = format!("/api/v1/friends/requests/{}", id(&outgoing["items"][0]));
    assert_eq!(app.delete(&cancel, &kim).await.status(), StatusCode::NO_CONTENT);
    let throttled = app.post("/api/v1/friends/requests", Some(&kim), json!({"username": others[3].1})).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 24 * 3600, "{retry_after}");
    let message = error_message(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("3 friend requests in the last 24 hours"), "{message}");
    let again = app.post("/api/v1/friends/requests", Some(&kim), json!({"username": others[4].1})).await;
    assert_eq!(error_code(again, StatusCode::TOO_MANY_REQUESTS).await, "rate_limited");

    // One friend at most: the second accept is refused and changes nothing.
    let outgoing = json_of(app.get("/api/v1/friends/requests?direction=outgoing", &kim).await, StatusCode::OK).await;
    let pending: Vec<Value> = outgoing["items"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 1);
    let recipient = others.iter().find(|(_, name)| pending[0]["to"]["username"] == json!(name)).unwrap();
    let accept = format!("/api/v1/friends/requests/{}/accept", id(&pending[0]));
    json_of(app.post(&accept, Some(&recipient.0), json!({})).await, StatusCode::OK).await;
    let (lee, _) = app.register("lee").await;
    let request = ask(&app, &lee, "kim").await;
    let accept = format!("/api/v1/friends/requests/{}/accept", id(&request));
    assert_eq!(error_code(app.post(&accept, Some(&kim), json!({})).await, StatusCode::CONFLICT).await, "limit_reached");
    let incoming = json_of(app.get("/api/v1/friends/requests", &kim).await, StatusCode::OK).await;
    assert_eq!(incoming["items"].as_array().unwrap().len(), 1, "the refused accept changed nothing");
}
