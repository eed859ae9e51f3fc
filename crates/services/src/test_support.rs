//! What the services' unit tests share: people, activities and mocked units of work.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use stride_domain::{
    Activity, ActivityDraft, ActivityId, DisplayName, Distance, MovingTime, Sport, StartedAt, TimeZone, Title, User,
    UserId, Username, Visibility,
};
use stride_repository::mocks::{Access, MockStore, MockUnitOfWork, MockUnits};

use crate::{Clock, ManualClock};

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z").unwrap().with_timezone(&Utc)
}

pub(crate) fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(now()))
}

pub(crate) fn person(name: &str) -> User {
    let username = Username::parse(name).unwrap();
    User {
        id: UserId::new(),
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: now(),
    }
}

pub(crate) fn draft(visibility: Visibility) -> ActivityDraft {
    ActivityDraft {
        sport: Sport::Run,
        title: Title::parse("Morning run").unwrap(),
        started_at: StartedAt::new(DateTime::parse_from_rfc3339("2026-03-09T07:00:00+01:00").unwrap()),
        duration: MovingTime::from_seconds(1800).unwrap(),
        distance: Distance::from_metres(5000.0).unwrap(),
        visibility,
        start_latlng: None,
        description: None,
    }
}

pub(crate) fn activity_of(owner: &User, visibility: Visibility) -> Activity {
    Activity::create(ActivityId::new(), owner.id, draft(visibility), now())
}

/// A store that hands out `units` in order, each for the access given beside it, and nothing
/// more: an unexpected unit of work fails the test.
pub(crate) fn store_of(units: Vec<(Access, MockUnitOfWork)>) -> MockStore {
    let mut mock = MockUnits::new();
    let mut sequence = mockall::Sequence::new();
    for (access, unit) in units {
        let mut unit = Some(unit);
        mock.expect_open()
            .withf(move |asked| *asked == access)
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_| Ok(unit.take().expect("each unit is handed out once")));
    }
    MockStore::new(mock)
}

/// Track views over a blob store that nothing may call (the activities here have no track).
pub(crate) fn views_of(store: MockStore) -> crate::TrackViews<MockStore> {
    let blobs: stride_repository::SharedBlobStore = Arc::new(stride_repository::mocks::MockDynBlobStore::new());
    let storage = crate::photos::storage::Storage::new(blobs, std::time::Duration::from_secs(1), Default::default());
    crate::TrackViews::new(
        store,
        storage,
        crate::CpuPool::new(crate::Threads::Blocking, crate::CpuPoolConfig::unbounded_wait(1)),
    )
}
