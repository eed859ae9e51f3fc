//! The contract of best efforts, records and monthly totals, on both backends.

use chrono::{DateTime, Utc};
use stride_domain::{
    Activity, ActivityDraft, ActivityId, BestEffort, DayNumber, DisplayName, Distance, MovingTime, PeriodTotals, Sport,
    StartedAt, TimeZone, Title, User, UserId, Username, Visibility,
};
use stride_repository::testing::deadline;
use stride_repository::{ActivityRepo, RecordsRepo, Store, UnitOfWork, UserRepo};

stride_repository::each_backend!(
    store:
    records_rank_the_stored_efforts_a_reader_may_see,
    months_add_up_and_go_when_empty,
    efforts_are_stored_whole_and_replaced,
);

async fn user<S: Store>(store: &S, name: &str) -> UserId {
    let username = Username::parse(name).unwrap();
    let user = User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: Utc::now(),
    };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_user(&user, "hash").await.unwrap();
    uow.commit().await.unwrap();
    user.id
}

fn run(owner: UserId, at: &str, visibility: Visibility) -> Activity {
    let started = DateTime::parse_from_rfc3339(at).unwrap();
    let draft = ActivityDraft {
        sport: Sport::Run,
        title: Title::default(),
        started_at: StartedAt::new(started),
        duration: MovingTime::from_seconds(600).unwrap(),
        distance: Distance::from_metres(2000.0).unwrap(),
        visibility,
        start_latlng: None,
        description: None,
    };
    Activity::create(ActivityId::new(), owner, draft, Utc::now())
}

fn km(elapsed_ds: i64) -> BestEffort {
    BestEffort { distance_mm: 1_000_000, elapsed_ds, start_ds: 0, end_ds: elapsed_ds }
}

async fn records_rank_the_stored_efforts_a_reader_may_see<S: Store>(store: S) {
    let owner = user(&store, "ranked").await;
    // Four runs: 250 s (private), 260 s, 260 s (a tie: the earlier start first), 270 s.
    let runs = [
        (run(owner, "2026-03-04T07:00:00+01:00", Visibility::Private), 2500),
        (run(owner, "2026-03-03T07:00:00+01:00", Visibility::Public), 2600),
        (run(owner, "2026-03-02T07:00:00+01:00", Visibility::Friends), 2600),
        (run(owner, "2026-03-01T07:00:00+01:00", Visibility::Public), 2700),
    ];
    let mut uow = store.write(deadline()).await.unwrap();
    for (activity, elapsed) in &runs {
        uow.insert_activity(activity).await.unwrap();
        uow.replace_efforts(activity.id, &[km(*elapsed)], 1).await.unwrap();
    }
    uow.commit().await.unwrap();
    let ids: Vec<ActivityId> = runs.iter().map(|(a, _)| a.id).collect();
    let mut uow = store.read(deadline()).await.unwrap();
    let best = uow.best_of(owner, Sport::Run, 1_000_000, &Visibility::ALL, 3).await.unwrap();
    assert_eq!(best.iter().map(|b| b.activity_id).collect::<Vec<_>>(), [ids[0], ids[2], ids[1]]);
    assert_eq!(best[1].started_at, runs[2].0.started_at, "the start in its own offset");
    let friend =
        uow.best_of(owner, Sport::Run, 1_000_000, &[Visibility::Friends, Visibility::Public], 3).await.unwrap();
    assert_eq!(friend.iter().map(|b| b.activity_id).collect::<Vec<_>>(), [ids[2], ids[1], ids[3]]);
    let public = uow.best_of(owner, Sport::Run, 1_000_000, &[Visibility::Public], 3).await.unwrap();
    assert_eq!(public.iter().map(|b| b.activity_id).collect::<Vec<_>>(), [ids[1], ids[3]]);
    assert!(uow.best_of(owner, Sport::Ride, 1_000_000, &Visibility::ALL, 3).await.unwrap().is_empty());
    assert_eq!(uow.efforts_of(ids[0]).await.unwrap(), [km(2500)]);
    drop(uow);

    // A change of sport moves the copies; a delete takes the efforts with it and the next
    // best moves up.
    let mut uow = store.write(deadline()).await.unwrap();
    let first = &runs[0].0;
    uow.sync_efforts(first.id, owner, Sport::Walk, first.visibility, first.started_at.utc_micros()).await.unwrap();
    uow.delete_activity(ids[2]).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    let best = uow.best_of(owner, Sport::Run, 1_000_000, &Visibility::ALL, 3).await.unwrap();
    assert_eq!(best.iter().map(|b| b.activity_id).collect::<Vec<_>>(), [ids[1], ids[3]]);
    let walks = uow.best_of(owner, Sport::Walk, 1_000_000, &Visibility::ALL, 3).await.unwrap();
    assert_eq!(walks.iter().map(|b| b.activity_id).collect::<Vec<_>>(), [ids[0]]);
    assert!(uow.efforts_of(ids[2]).await.unwrap().is_empty());
    let longest = uow.longest(owner, Sport::Run, &Visibility::ALL).await.unwrap().unwrap();
    assert_eq!(longest.value, 2000.0);
    assert!(uow.biggest_climb(owner, Sport::Run, &Visibility::ALL).await.unwrap().is_none(), "no track, no climb");
    // Nothing has a track, so nothing needs efforts.
    assert!(uow.activities_needing_efforts(i32::MAX, Some(owner), None, 10).await.unwrap().is_empty());
}

async fn efforts_are_stored_whole_and_replaced<S: Store>(store: S) {
    let owner = user(&store, "efforts").await;
    let activity = run(owner, "2026-03-04T07:00:00+01:00", Visibility::Public);
    // More than one statement carries (16), every field different, in no particular order.
    let efforts: Vec<BestEffort> = (0..37_i64)
        .rev()
        .map(|i| BestEffort {
            distance_mm: 400_000 + i * 1_000,
            elapsed_ds: 900 + 7 * i,
            start_ds: i,
            end_ds: 905 + 8 * i,
        })
        .collect();
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_activity(&activity).await.unwrap();
    uow.replace_efforts(activity.id, &efforts, 1).await.unwrap();
    uow.commit().await.unwrap();
    let mut sorted = efforts.clone();
    sorted.sort_by_key(|e| e.distance_mm);
    assert_eq!(store.read(deadline()).await.unwrap().efforts_of(activity.id).await.unwrap(), sorted);

    let mut uow = store.write(deadline()).await.unwrap();
    uow.replace_efforts(activity.id, &efforts[3..5], 2).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.efforts_of(activity.id).await.unwrap(), [efforts[4], efforts[3]]);
    let best = uow.best_of(owner, Sport::Run, efforts[3].distance_mm, &Visibility::ALL, 3).await.unwrap();
    assert_eq!(best.iter().map(|b| (b.activity_id, b.elapsed_ds)).collect::<Vec<_>>(), [(activity.id, 900 + 7 * 33)]);
}

async fn months_add_up_and_go_when_empty<S: Store>(store: S) {
    let owner = user(&store, "monthly").await;
    let (march, april) = (DayNumber::new(20_513), DayNumber::new(20_544));
    let delta =
        |n: i64| PeriodTotals { activities: n, distance_mm: n * 5_000_000, duration_s: n * 1800, gain_mm: n * 10_000 };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.adjust_month(owner, march, Sport::Run, delta(2)).await.unwrap();
    uow.adjust_month(owner, march, Sport::Ride, delta(1)).await.unwrap();
    uow.adjust_month(owner, april, Sport::Run, delta(1)).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    let all = uow.months(owner, march, april, None).await.unwrap();
    assert_eq!(all, [(march, delta(3)), (april, delta(1))]);
    let rides = uow.months(owner, march, april, Some(Sport::Ride)).await.unwrap();
    assert_eq!(rides, [(march, delta(1))]);
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.adjust_month(owner, april, Sport::Run, delta(-1)).await.unwrap();
    assert!(uow.adjust_month(owner, march, Sport::Ride, delta(-2)).await.is_err(), "a month never counts below 0");
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.adjust_month(owner, april, Sport::Run, delta(-1)).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.months(owner, march, april, None).await.unwrap(), [(march, delta(3))]);
}
