//! The statistics cache: coalescing of concurrent misses, and versioned invalidation.

use std::sync::Arc;

use chrono::DateTime;
use stride_domain::{
    ActivityDraft, Distance, MovingTime as Moving, Password, Sport, StartedAt, Title, Username, Visibility,
};
use stride_repository::testing::{TestDatabase, deadline};
use stride_services::{Registration, Stride, SystemClock};

fn draft(day: u32) -> ActivityDraft {
    ActivityDraft {
        sport: Sport::Ride,
        title: Title::default(),
        started_at: StartedAt::new(DateTime::parse_from_rfc3339(&format!("2026-03-{day:02}T08:00:00Z")).unwrap()),
        duration: Moving::from_seconds(600).unwrap(),
        distance: Distance::from_metres(1000.0).unwrap(),
        visibility: Visibility::Private,
        start_latlng: None,
        description: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_computation_and_a_write_forces_a_new_one() {
    let db = TestDatabase::sqlite();
    let blobs = tempfile::tempdir().unwrap();
    let blobs = Arc::new(stride_repository::LocalBlobStore::open(blobs.path()).await.unwrap());
    let stride = Stride::new(db.sqlite_store().await, Arc::new(SystemClock), blobs, Default::default()).unwrap();
    let registration = Registration {
        username: Username::parse("coalesce").unwrap(),
        password: Password::parse("correct horse battery").unwrap(),
        display_name: None,
        timezone: None,
    };
    let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user;
    for day in 1..=3 {
        stride.activities.create(deadline(), user.id, draft(day), None).await.unwrap();
    }

    let readers = (0..25).map(|_| stride.stats.of(deadline(), user.id, user.id));
    let results = futures::future::join_all(readers).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().total_activities == 3));
    assert_eq!(stride.stats.computations(), 1, "25 concurrent misses, one computation (three repository calls)");

    stride.stats.of(deadline(), user.id, user.id).await.unwrap();
    assert_eq!(stride.stats.computations(), 1, "a hit computes nothing");

    stride.activities.create(deadline(), user.id, draft(4), None).await.unwrap();
    let after_write = stride.stats.of(deadline(), user.id, user.id).await.unwrap();
    assert_eq!(after_write.total_activities, 4, "the writer's next read sees its write");
    assert_eq!(after_write.current_streak_days.max(after_write.longest_streak_days), 4);
    assert_eq!(stride.stats.computations(), 2);
}
