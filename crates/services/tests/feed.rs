//! The feed against its reference, on both backends: random friend graphs and histories (many
//! ties on `started_at`, every visibility), paged with random limits and chunk sizes while
//! activities are inserted and deleted between pages. Every page of the concurrent fan-out must
//! equal the single-query reference (`user_id IN (…) AND (started_at, id) < cursor ORDER BY …
//! LIMIT n + 1`) run on the same data, and the whole walk must show no duplicates and skip
//! nothing that existed before paging started and was not deleted.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stride_domain::{
    Activity, ActivityCursor, ActivityDraft, ActivityId, DisplayName, Distance, MovingTime, Sport, StartedAt, TimeZone,
    Title, User, UserId, Username, Visibility,
};
use stride_repository::testing::deadline;
use stride_repository::{ActivityRepo, RelationshipRepo, Store, UnitOfWork, UserRepo};
use stride_services::{FeedConfig, FeedService, FeedStrategy};

stride_repository::each_backend!(store: fan_out_pages_equal_the_single_query_reference_while_others_write);

const CASES: u64 = 6;

async fn fan_out_pages_equal_the_single_query_reference_while_others_write<S: Store>(store: S) {
    let base_seed: u64 =
        std::env::var("STRIDE_FEED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("feed property: base seed {base_seed} (STRIDE_FEED_SEED to replay)");
    for case in 0..CASES {
        let seed = base_seed.wrapping_add(case);
        let mut rng = StdRng::seed_from_u64(seed);
        one_case(&store, &mut rng, case).await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

fn started(rng: &mut StdRng) -> StartedAt {
    // Twelve distinct instants: most activities tie with others on `started_at`.
    let base = DateTime::parse_from_rfc3339("2026-01-01T07:00:00Z").unwrap().with_timezone(&Utc);
    let at = base + TimeDelta::hours(rng.random_range(0..12));
    StartedAt::from_parts(at.timestamp_micros(), 0).unwrap()
}

fn activity(rng: &mut StdRng, owner: UserId, at: StartedAt) -> Activity {
    let visibility = Visibility::ALL[rng.random_range(0..3)];
    let draft = ActivityDraft {
        sport: Sport::Run,
        title: Title::default(),
        started_at: at,
        duration: MovingTime::from_seconds(600).unwrap(),
        distance: Distance::from_metres(1000.0).unwrap(),
        visibility,
        start_latlng: None,
        description: None,
    };
    Activity::create(ActivityId::new(), owner, draft, Utc::now())
}

async fn one_case<S: Store>(store: &S, rng: &mut StdRng, case: u64) -> Result<(), String> {
    let people: Vec<UserId> = (0..12).map(|_| UserId::new()).collect();
    let viewer = people[0];
    let friends: HashSet<UserId> = people[1..].iter().copied().filter(|_| rng.random_bool(0.6)).collect();
    let mut all = Vec::new();
    {
        let mut uow = store.write(deadline()).await.map_err(|e| e.to_string())?;
        for (i, id) in people.iter().enumerate() {
            let user = User {
                id: *id,
                username: Username::parse(&format!("c{case}_p{i}_{}", rng.random_range(0..1_000_000))).unwrap(),
                display_name: DisplayName::parse("Person").unwrap(),
                timezone: TimeZone::parse("UTC").unwrap(),
                created_at: Utc::now(),
            };
            uow.insert_user(&user, "not-a-hash").await.map_err(|e| e.to_string())?;
        }
        for friend in &friends {
            uow.insert_friendship(viewer, *friend, Utc::now()).await.map_err(|e| e.to_string())?;
        }
        for owner in &people {
            for _ in 0..rng.random_range(0..15) {
                let at = started(rng);
                let activity = activity(rng, *owner, at);
                uow.insert_activity(&activity).await.map_err(|e| e.to_string())?;
                all.push(activity);
            }
        }
        uow.commit().await.map_err(|e| e.to_string())?;
    }
    let visible_to_viewer =
        |a: &Activity| a.user_id == viewer || (friends.contains(&a.user_id) && a.visibility != Visibility::Private);
    let before: HashSet<ActivityId> = all.iter().filter(|a| visible_to_viewer(a)).map(|a| a.id).collect();

    let config = FeedConfig {
        chunk_size: rng.random_range(1..=4),
        concurrency: rng.random_range(1..=4),
        ..FeedConfig::default()
    };
    let feed = FeedService::new(store.clone(), config);
    let limit = rng.random_range(1..=7);
    let mut after: Option<ActivityCursor> = None;
    let mut seen = Vec::new();
    let mut deleted = HashSet::new();
    for _page in 0..200 {
        let product = feed
            .page_with(FeedStrategy::FanOut, deadline(), viewer, case as i64, after, limit)
            .await
            .map_err(|e| e.to_string())?;
        for strategy in [FeedStrategy::SingleQuery, FeedStrategy::Sequential, FeedStrategy::SingleTopK] {
            let other = feed
                .page_with(strategy, deadline(), viewer, case as i64, after, limit)
                .await
                .map_err(|e| e.to_string())?;
            let ids = |p: &stride_services::FeedPage| p.items.iter().map(|i| i.activity.id).collect::<Vec<_>>();
            if ids(&product) != ids(&other) || product.next_cursor != other.next_cursor {
                return Err(format!(
                    "{strategy:?} differs from the fan-out after {after:?} (limit {limit}, {config:?})"
                ));
            }
        }
        for item in &product.items {
            if !visible_to_viewer(&item.activity) {
                return Err(format!("{} is not visible to the viewer", item.activity.id));
            }
            if item.author.id != item.activity.user_id {
                return Err("an item carries another author's profile".into());
            }
            seen.push(item.activity.id);
        }
        // Others write between pages: one new activity anywhere in time, one deletion.
        let mut uow = store.write(deadline()).await.map_err(|e| e.to_string())?;
        let owner = people[rng.random_range(0..people.len())];
        let at = started(rng);
        let fresh = activity(rng, owner, at);
        uow.insert_activity(&fresh).await.map_err(|e| e.to_string())?;
        all.push(fresh);
        if rng.random_bool(0.5) {
            let victim = all.swap_remove(rng.random_range(0..all.len()));
            uow.delete_activity(victim.id).await.map_err(|e| e.to_string())?;
            deleted.insert(victim.id);
        }
        uow.commit().await.map_err(|e| e.to_string())?;
        match product.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let unique: HashSet<ActivityId> = seen.iter().copied().collect();
    if unique.len() != seen.len() {
        return Err("an item showed on two pages".into());
    }
    if let Some(skipped) = before.iter().find(|id| !unique.contains(id) && !deleted.contains(id)) {
        return Err(format!("{skipped} existed before paging started and was skipped"));
    }
    Ok(())
}
