//! The contract of imports, track files and privacy zones, on both backends.

use chrono::{DateTime, TimeDelta, Utc};
use stride_domain::{
    Activity, ActivityDraft, ActivityId, DisplayName, Distance, Import, ImportId, ImportItem, ImportState, ItemState,
    MovingTime, NewJob, PrivacyZone, Problem, Sport, StartedAt, TimeZone, Title, TrackSummary, User, UserId, Username,
    Visibility, ZoneId,
};
use stride_repository::testing::deadline;
use stride_repository::{
    ActivityRepo, ImportRepo, ItemOutcome, JobRepo, RepoError, Store, TrackFile, UnitOfWork, UserRepo, ZoneRepo,
};

stride_repository::each_backend!(
    store:
    imports_and_items_round_trip_and_settle_once,
    cancelling_stops_queued_items_and_a_finished_import_stays,
    a_lease_is_held_only_by_its_running_attempt,
    track_files_are_unique_per_user_and_go_with_their_activity,
    import_keys_answer_within_their_window,
    zones_round_trip_per_user,
    an_archive_is_planned_once_and_reports_its_rate,
    strava_ids_are_unique_per_user_and_go_with_their_activity,
);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

async fn insert_user<S: Store>(store: &S, name: &str) -> UserId {
    let username = Username::parse(name).unwrap();
    let user = User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: now(),
    };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_user(&user, "hash").await.unwrap();
    uow.commit().await.unwrap();
    user.id
}

fn import(user: UserId, files: u32) -> (Import, Vec<ImportItem>) {
    let id = ImportId::new();
    let import = Import {
        id,
        user_id: user,
        state: ImportState::Queued,
        sport: Some("run".into()),
        visibility: "public".into(),
        total: Some(files),
        imported: 0,
        duplicate: 0,
        failed: 0,
        cancelled: 0,
        error: None,
        created_at: now(),
        finished_at: None,
        archive_key: None,
        rate_per_s: None,
    };
    let items = (0..files)
        .map(|index| ImportItem {
            import_id: id,
            index,
            name: format!("file {index}.gpx"),
            blob_key: stride_domain::import_item_blob(id, index),
            bytes: 1000 + u64::from(index),
            state: ItemState::Queued,
            activity_id: None,
            error: None,
            warnings: Vec::new(),
        })
        .collect();
    (import, items)
}

async fn insert_import<S: Store>(store: &S, import: &Import, items: &[ImportItem]) {
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_import(import, items).await.unwrap();
    uow.commit().await.unwrap();
}

async fn imports_and_items_round_trip_and_settle_once<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let (first, items) = import(alice, 3);
    insert_import(&store, &first, &items).await;
    let (second, _) = import(alice, 0);
    insert_import(&store, &second, &[]).await;
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.import_by_id(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(uow.import_items(first.id, 0, 10).await.unwrap(), items);
    assert_eq!(uow.import_items(first.id, 1, 1).await.unwrap(), items[1..2].to_vec());
    let listed: Vec<ImportId> = uow.list_imports(alice, None, 10).await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(listed, [second.id, first.id], "newest first");
    let after = uow.list_imports(alice, Some((second.created_at, second.id)), 10).await.unwrap();
    assert_eq!(after.iter().map(|i| i.id).collect::<Vec<_>>(), [first.id]);
    assert_eq!(uow.active_imports(alice).await.unwrap(), 2);
    drop(uow);

    let activity = ActivityId::new();
    let problem = Problem::new("no_track", "fewer than 2 timed points");
    let warning = Problem::new("photo_failed", "a.jpg: not an image");
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.start_import(first.id).await.unwrap());
    assert!(!uow.start_import(first.id).await.unwrap(), "only a queued import starts");
    assert!(
        uow.settle_item(first.id, 0, &ItemOutcome::Imported(activity), std::slice::from_ref(&warning)).await.unwrap()
    );
    assert!(!uow.settle_item(first.id, 0, &ItemOutcome::Failed(problem.clone()), &[]).await.unwrap(), "once");
    assert!(uow.settle_item(first.id, 1, &ItemOutcome::Duplicate(activity), &[]).await.unwrap());
    assert!(uow.settle_item(first.id, 2, &ItemOutcome::Failed(problem.clone()), &[]).await.unwrap());
    let done_at = now();
    assert!(uow.finish_import(first.id, ImportState::Done, None, done_at).await.unwrap());
    assert!(!uow.finish_import(first.id, ImportState::Failed, Some(&problem), done_at).await.unwrap());
    uow.commit().await.unwrap();

    let mut uow = store.read(deadline()).await.unwrap();
    let stored = uow.import_by_id(first.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.imported, stored.duplicate, stored.failed), (ImportState::Done, 1, 1, 1));
    assert_eq!(stored.finished_at, Some(done_at));
    let items = uow.import_items(first.id, 0, 10).await.unwrap();
    assert_eq!(items[0].state, ItemState::Imported);
    assert_eq!((items[0].activity_id, items[0].warnings.clone()), (Some(activity), vec![warning]));
    assert_eq!((items[1].state, items[1].activity_id), (ItemState::Duplicate, Some(activity)));
    assert_eq!((items[2].state, items[2].error.clone()), (ItemState::Failed, Some(problem)));
    assert_eq!(uow.active_imports(alice).await.unwrap(), 1);
    assert!(uow.blob_named_by_import(&items[2].blob_key).await.unwrap());
    assert!(!uow.blob_named_by_import("imports/nobody/00000").await.unwrap());
}

async fn cancelling_stops_queued_items_and_a_finished_import_stays<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let (running, items) = import(alice, 3);
    insert_import(&store, &running, &items).await;
    let mut uow = store.write(deadline()).await.unwrap();
    uow.start_import(running.id).await.unwrap();
    uow.settle_item(running.id, 0, &ItemOutcome::Imported(ActivityId::new()), &[]).await.unwrap();
    assert!(uow.cancel_import(running.id, now()).await.unwrap());
    assert!(!uow.cancel_import(running.id, now()).await.unwrap(), "a cancelled import is final");
    assert!(!uow.settle_item(running.id, 1, &ItemOutcome::Imported(ActivityId::new()), &[]).await.unwrap());
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    let stored = uow.import_by_id(running.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.imported, stored.cancelled), (ImportState::Cancelled, 1, 2));
    let states: Vec<ItemState> = uow.import_items(running.id, 0, 10).await.unwrap().iter().map(|i| i.state).collect();
    assert_eq!(states, [ItemState::Imported, ItemState::Cancelled, ItemState::Cancelled]);

    let (failing, items) = import(alice, 2);
    insert_import(&store, &failing, &items).await;
    let problem = Problem::new("import_failed", "gave up");
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.finish_import(failing.id, ImportState::Failed, Some(&problem), now()).await.unwrap());
    assert_eq!(uow.fail_queued_items(failing.id, &problem).await.unwrap(), 2);
    uow.commit().await.unwrap();
    let stored = store.read(deadline()).await.unwrap().import_by_id(failing.id).await.unwrap().unwrap();
    assert_eq!((stored.state, stored.failed, stored.error), (ImportState::Failed, 2, Some(problem)));
}

async fn a_lease_is_held_only_by_its_running_attempt<S: Store>(store: S) {
    let at = now();
    let mut uow = store.write(deadline()).await.unwrap();
    uow.enqueue(&NewJob::due("imports.run", "{}".into(), 3, at), at).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.write(deadline()).await.unwrap();
    let lease = uow.claim("imports.run", at, at + TimeDelta::seconds(30), 1).await.unwrap().remove(0);
    uow.commit().await.unwrap();
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.hold_lease(lease.id(), lease.attempt()).await.unwrap());
    assert!(!uow.hold_lease(lease.id(), lease.attempt() + 1).await.unwrap());
    uow.commit().await.unwrap();
    // Rescued after the lease expired: the old attempt holds nothing.
    let later = at + TimeDelta::seconds(31);
    let mut uow = store.write(deadline()).await.unwrap();
    let rescued = uow.claim("imports.run", later, later + TimeDelta::seconds(30), 1).await.unwrap().remove(0);
    uow.commit().await.unwrap();
    assert_eq!(rescued.attempt(), lease.attempt() + 1);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(!uow.hold_lease(lease.id(), lease.attempt()).await.unwrap());
    assert!(uow.hold_lease(rescued.id(), rescued.attempt()).await.unwrap());
}

fn recorded(owner: UserId) -> Activity {
    let draft = ActivityDraft {
        sport: Sport::Ride,
        title: Title::parse("Ride").unwrap(),
        started_at: StartedAt::parse("2026-06-02T06:30:00+09:00").unwrap(),
        duration: MovingTime::from_seconds(600).unwrap(),
        distance: Distance::from_metres(3000.25).unwrap(),
        visibility: Visibility::Friends,
        start_latlng: None,
        description: None,
    };
    let track = TrackSummary {
        points: 601,
        elapsed_s: 620,
        moving_s: 600,
        distance_m: 3000.25,
        elevation_gain_m: Some(12.5),
        elevation_loss_m: None,
        avg_hr: Some(141),
        max_hr: Some(170),
        polyline: Some("_p~iF~ps|U".into()),
        polyline_tolerance_m: Some(5.0),
        bbox: Some([38.5, -120.2, 38.5, -120.2]),
        splits: vec![stride_domain::SplitSummary { km: 1, distance_m: 1000.0, elapsed_s: 201.3 }],
    };
    Activity::recorded(ActivityId::new(), owner, draft, stride_domain::Source::Fit, track, now())
}

async fn track_files_are_unique_per_user_and_go_with_their_activity<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let bob = insert_user(&store, "bob").await;
    let (mine, theirs) = (recorded(alice), recorded(bob));
    let file = |activity: &Activity| TrackFile {
        activity_id: activity.id,
        user_id: activity.user_id,
        sha256: vec![7; 32],
        name: "ride.fit".into(),
        blob_key: "imports/x/00000".into(),
        bytes: 1234,
    };
    let mut uow = store.write(deadline()).await.unwrap();
    for activity in [&mine, &theirs] {
        uow.insert_activity(activity).await.unwrap();
        uow.insert_track_file(&file(activity)).await.unwrap();
    }
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.activity_by_id(mine.id).await.unwrap(), Some(mine.clone()), "the track round-trips");
    assert_eq!(uow.activity_with_file(alice, &[7; 32]).await.unwrap(), Some(mine.id));
    assert_eq!(uow.activity_with_file(bob, &[7; 32]).await.unwrap(), Some(theirs.id), "per user");
    assert_eq!(uow.track_file(mine.id).await.unwrap(), Some(file(&mine)));
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    let twin = recorded(alice);
    uow.insert_activity(&twin).await.unwrap();
    let refused = uow.insert_track_file(&file(&twin)).await;
    assert!(matches!(refused, Err(RepoError::Conflict { .. })), "{refused:?}");
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.delete_activity(mine.id).await.unwrap());
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.activity_with_file(alice, &[7; 32]).await.unwrap(), None, "the hash goes with the activity");
}

async fn import_keys_answer_within_their_window<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let (first, _) = import(alice, 0);
    let (second, _) = import(alice, 0);
    insert_import(&store, &first, &[]).await;
    insert_import(&store, &second, &[]).await;
    let at = now();
    let window = at - TimeDelta::hours(24);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.record_import_key(alice, "k1", first.id, window, at).await.unwrap();
    uow.commit().await.unwrap();
    let mut uow = store.write(deadline()).await.unwrap();
    let again = uow.record_import_key(alice, "k1", second.id, window, at).await;
    assert!(matches!(again, Err(RepoError::Conflict { .. })));
    drop(uow);
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.find_import_key(alice, "k1", window).await.unwrap(), Some(first.id));
    assert_eq!(uow.find_import_key(alice, "k1", at + TimeDelta::seconds(1)).await.unwrap(), None, "expired");
    drop(uow);
    // An expired record may be taken over.
    let later = at + TimeDelta::hours(25);
    let mut uow = store.write(deadline()).await.unwrap();
    uow.record_import_key(alice, "k1", second.id, later - TimeDelta::hours(24), later).await.unwrap();
    uow.commit().await.unwrap();
}

async fn zones_round_trip_per_user<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let bob = insert_user(&store, "bob").await;
    let zone = |user, lat| PrivacyZone {
        id: ZoneId::new(),
        user_id: user,
        lat,
        lon: 14.5,
        radius_m: 250.5,
        created_at: now(),
    };
    let (first, second, other) = (zone(alice, 46.0), zone(alice, 46.1), zone(bob, 1.0));
    let mut uow = store.write(deadline()).await.unwrap();
    for z in [&first, &second, &other] {
        uow.insert_zone(z).await.unwrap();
    }
    uow.commit().await.unwrap();
    assert_eq!(store.read(deadline()).await.unwrap().zones_of(alice).await.unwrap(), vec![first, second]);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(!uow.delete_zone(bob, first.id).await.unwrap(), "only the owner's");
    assert!(uow.delete_zone(alice, first.id).await.unwrap());
    uow.commit().await.unwrap();
    assert_eq!(store.read(deadline()).await.unwrap().zones_of(alice).await.unwrap(), vec![second]);
}

async fn an_archive_is_planned_once_and_reports_its_rate<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let (mut archive, _) = import(alice, 0);
    archive.total = None;
    archive.archive_key = Some(format!("imports/{}/archive.zip", archive.id));
    insert_import(&store, &archive, &[]).await;
    // 150 items: two full multi-row inserts and a remainder of 22 one by one.
    let items: Vec<ImportItem> = (0..150)
        .map(|index| ImportItem {
            import_id: archive.id,
            index,
            name: format!("activities/{index}.fit.gz"),
            blob_key: stride_domain::import_item_blob(archive.id, index),
            bytes: u64::from(index) * 10,
            state: ItemState::Queued,
            activity_id: None,
            error: None,
            warnings: Vec::new(),
        })
        .collect();
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.plan_import(archive.id, &items).await.unwrap(), "the first plan is recorded");
    assert!(!uow.plan_import(archive.id, &items).await.unwrap(), "a second changes nothing");
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    let stored = uow.import_by_id(archive.id).await.unwrap().unwrap();
    assert_eq!((stored.total, stored.archive_key.as_deref()), (Some(150), archive.archive_key.as_deref()));
    let mut read = uow.import_items(archive.id, 0, 200).await.unwrap();
    assert_eq!(read.len(), 150, "each item once");
    assert_eq!(read.remove(149), items[149]);
    assert_eq!(read[63], items[63]);
    assert!(uow.blob_named_by_import(archive.archive_key.as_deref().unwrap()).await.unwrap(), "queued: kept");
    drop(uow);

    let mut uow = store.write(deadline()).await.unwrap();
    uow.record_progress(archive.id, 12.5).await.unwrap();
    uow.commit().await.unwrap();
    let queued = store.read(deadline()).await.unwrap().import_by_id(archive.id).await.unwrap().unwrap();
    assert_eq!(queued.rate_per_s, None, "only a running import records a rate");
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.start_import(archive.id).await.unwrap());
    uow.record_progress(archive.id, 12.5).await.unwrap();
    uow.commit().await.unwrap();
    let running = store.read(deadline()).await.unwrap().import_by_id(archive.id).await.unwrap().unwrap();
    assert_eq!((running.rate_per_s, running.eta_s()), (Some(12.5), Some(12.0)), "150 left at 12.5/s");
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.finish_import(archive.id, ImportState::Done, None, now()).await.unwrap());
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    let done = uow.import_by_id(archive.id).await.unwrap().unwrap();
    assert_eq!((done.rate_per_s, done.eta_s()), (None, None), "the rate ends with the import");
    assert!(!uow.blob_named_by_import(archive.archive_key.as_deref().unwrap()).await.unwrap(), "done: garbage");
}

async fn strava_ids_are_unique_per_user_and_go_with_their_activity<S: Store>(store: S) {
    let alice = insert_user(&store, "alice").await;
    let bob = insert_user(&store, "bob").await;
    let (mine, theirs) = (recorded(alice), recorded(bob));
    let mut uow = store.write(deadline()).await.unwrap();
    for activity in [&mine, &theirs] {
        uow.insert_activity(activity).await.unwrap();
        uow.insert_strava_id(activity.user_id, "1001", activity.id).await.unwrap();
    }
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.activity_with_strava_id(alice, "1001").await.unwrap(), Some(mine.id));
    assert_eq!(uow.activity_with_strava_id(bob, "1001").await.unwrap(), Some(theirs.id), "per user");
    assert_eq!(uow.activity_with_strava_id(alice, "1002").await.unwrap(), None);
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    let twin = recorded(alice);
    uow.insert_activity(&twin).await.unwrap();
    let refused = uow.insert_strava_id(alice, "1001", twin.id).await;
    assert!(matches!(refused, Err(RepoError::Conflict { .. })), "{refused:?}");
    drop(uow);
    let mut uow = store.write(deadline()).await.unwrap();
    assert!(uow.delete_activity(mine.id).await.unwrap());
    uow.commit().await.unwrap();
    let mut uow = store.read(deadline()).await.unwrap();
    assert_eq!(uow.activity_with_strava_id(alice, "1001").await.unwrap(), None, "the id goes with the activity");
}
