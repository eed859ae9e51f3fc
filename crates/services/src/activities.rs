//! Activity use cases: create (idempotently), read, list, change and delete.
//!
//! Who may see or change an activity is decided by [`relationship`](crate::relationship) and
//! the domain's `can_view`; anything the caller may not see answers `NotFound`, exactly like
//! something that does not exist, so hidden activities cannot be probed for.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use stride_concurrency::Deadline;
use stride_domain::{Activity, ActivityCursor, ActivityDraft, ActivityId, ActivityPatch, Page, StartedAt, UserId};
use stride_repository::{
    ActivityRepo, FeedRepo, IdempotencyRecord, IdempotencyRepo, IdempotencyScope, ProfileRepo, RepoError, Store,
    UnitOfWork,
};

use crate::activity_write::ActivityWrites;
use crate::idempotency::{IDEMPOTENCY_WINDOW, IdempotencyKey};
use crate::limits::Limits;
use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult, TrackViews, relationship};

/// The outcome of an idempotent create.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New(Activity),
    /// A retry: the activity the first request with this key created.
    Replayed(Activity),
}

impl Created {
    pub fn activity(&self) -> &Activity {
        match self {
            Created::New(a) | Created::Replayed(a) => a,
        }
    }
}

/// One page of activities, newest first.
pub type ActivityPage = Page<Activity, ActivityCursor>;

#[derive(Clone)]
pub struct ActivityService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    /// The one write path, which keeps everything derived from an activity in step.
    writes: ActivityWrites,
    /// Start points set by hand are limited per user: each may cost a weather lookup.
    limits: Limits<S>,
    /// What others see of a route (privacy zones).
    views: TrackViews<S>,
}

impl<S: Store> ActivityService<S> {
    pub(crate) fn new(
        store: S,
        clock: Arc<dyn Clock>,
        writes: ActivityWrites,
        limits: Limits<S>,
        views: TrackViews<S>,
    ) -> Self {
        Self { store, clock, writes, limits, views }
    }

    /// Counts a start point set by hand against the owner's hourly allowance (`Throttled`
    /// past it, before anything is written).
    async fn admit_start(&self, deadline: Deadline, owner: UserId) -> ServiceResult<()> {
        self.limits.admit(deadline, &[self.limits.start_points_by(owner)]).await
    }

    /// Creates an activity. With a key, a retry of the same request within 24 hours returns
    /// the first result and creates nothing; the same key with a different request is refused.
    pub async fn create(
        &self,
        deadline: Deadline,
        owner: UserId,
        draft: ActivityDraft,
        key: Option<IdempotencyKey>,
    ) -> ServiceResult<Created> {
        let now = self.clock.now();
        check_start(&draft.started_at, now)?;
        if draft.start_latlng.is_some() {
            self.admit_start(deadline, owner).await?;
        }
        let activity = Activity::create(ActivityId::new(), owner, draft, now);
        let Some(key) = key else {
            let mut uow = self.store.write(deadline).await?;
            let outcome = self.writes.insert(&mut uow, activity, now).await;
            return finish(uow, outcome).await.map(Created::New);
        };
        let key = key.as_str();

        let record = IdempotencyRecord { fingerprint: fingerprint(&activity), activity_id: activity.id };
        let scope = IdempotencyScope { user: owner, key, not_before: now - IDEMPOTENCY_WINDOW };
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            if let Some(first) = uow.find_idempotency_key(scope).await? {
                return Ok(KeyedCreate::Done(Box::new(replay(&mut uow, &record, first).await?)));
            }
            // The key is recorded before the activity: if a concurrent request with the same
            // key committed in between, this fails, the unit of work rolls back, and we answer
            // with the winner's result instead of creating a twin.
            match uow.record_idempotency_key(scope, &record, now).await {
                Ok(()) => {}
                Err(RepoError::Conflict { .. }) => return Ok(KeyedCreate::LostTheRace),
                Err(other) => return Err(other.into()),
            }
            let activity = self.writes.insert(&mut uow, activity, now).await?;
            Ok(KeyedCreate::Done(Box::new(Created::New(activity))))
        }
        .await;
        // A replay wrote nothing, so committing it is as cheap as rolling it back.
        match outcome {
            Ok(KeyedCreate::Done(created)) => finish(uow, Ok(*created)).await,
            Err(error) => finish(uow, Err(error)).await,
            Ok(KeyedCreate::LostTheRace) => {
                uow.rollback().await?;
                let mut uow = self.store.read(deadline).await?;
                let first = uow
                    .find_idempotency_key(scope)
                    .await?
                    .ok_or_else(|| ServiceError::Internal("idempotency key vanished after a conflict".into()))?;
                replay(&mut uow, &record, first).await
            }
        }
    }

    /// An activity the viewer may see.
    pub async fn get(&self, deadline: Deadline, viewer: UserId, id: ActivityId) -> ServiceResult<Activity> {
        let mut activity = {
            let mut uow = self.store.read(deadline).await?;
            crate::access::visible_activity(&mut uow, viewer, id).await?
        };
        self.views.show_to(deadline, viewer, &mut [&mut activity]).await?;
        Ok(activity)
    }

    /// One page of `owner`'s activities as `viewer` may see them: everything to the owner,
    /// `friends` and `public` to a friend, `public` to anyone else; `NotFound` for an unknown
    /// user and across a block.
    pub async fn list_of(
        &self,
        deadline: Deadline,
        viewer: UserId,
        owner: UserId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> ServiceResult<ActivityPage> {
        let mut uow = self.store.read(deadline).await?;
        let relationship = relationship(&mut uow, viewer, owner).await?;
        if !relationship.may_view_profile() || uow.profile_by_id(owner).await?.is_none() {
            return Err(ServiceError::NotFound);
        }
        let visible = stride_domain::Visibility::visible_to(relationship);
        let items = uow.activities_visible(owner, visible, after, limit + 1).await?;
        drop(uow);
        let mut page = Page::from_overfetched(items, limit, stride_domain::cursor_after);
        self.views.show_to(deadline, viewer, &mut page.items.iter_mut().collect::<Vec<_>>()).await?;
        Ok(page)
    }

    /// One page of the owner's own activities, newest first.
    pub async fn list_own(
        &self,
        deadline: Deadline,
        owner: UserId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> ServiceResult<ActivityPage> {
        let mut uow = self.store.read(deadline).await?;
        let items = uow.list_activities(owner, after, limit + 1).await?;
        Ok(Page::from_overfetched(items, limit, stride_domain::cursor_after))
    }

    pub async fn update(
        &self,
        deadline: Deadline,
        viewer: UserId,
        id: ActivityId,
        patch: ActivityPatch,
    ) -> ServiceResult<Activity> {
        if let Some(started_at) = &patch.started_at {
            check_start(started_at, self.clock.now())?;
        }
        // Before the write's own unit of work (SQLite has one writer at a time). A patch that
        // names a start counts, moved or not: whether it moves is known only inside.
        if matches!(patch.start_latlng, Some(Some(_))) {
            self.admit_start(deadline, viewer).await?;
        }
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let before = self.modifiable(&mut uow, viewer, id).await?;
            if before.track.is_some() && patch.touches_track() {
                return Err(ServiceError::Refused {
                    code: "track_owned",
                    message: "distance_m, duration_s and started_at of an activity with a track are the track's".into(),
                });
            }
            let mut after = before.clone();
            let now = self.clock.now();
            after.apply(patch, now);
            self.writes.update(&mut uow, &before, after, now).await
        }
        .await;
        finish(uow, outcome).await
    }

    /// Deletes the activity with its photos: their rows go in the same commit (the foreign
    /// key cascades), and so does the durable job that removes their blobs.
    pub async fn delete(&self, deadline: Deadline, viewer: UserId, id: ActivityId) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            let activity = self.modifiable(&mut uow, viewer, id).await?;
            self.writes.delete(&mut uow, &activity, self.clock.now()).await
        }
        .await;
        finish(uow, outcome).await
    }

    /// The activity, locked for this unit of work, if the viewer may change it.
    async fn modifiable(&self, uow: &mut S::Uow, viewer: UserId, id: ActivityId) -> ServiceResult<Activity> {
        let activity = uow.activity_by_id_for_update(id).await?.ok_or(ServiceError::NotFound)?;
        if crate::access::may_modify(viewer, activity.user_id) { Ok(activity) } else { Err(ServiceError::NotFound) }
    }
}

/// How the write half of a keyed create ended.
enum KeyedCreate {
    Done(Box<Created>),
    /// A concurrent request with the same key committed first: answer with its result.
    LostTheRace,
}

/// A start more than a day after now is a client's mistake (or a clock gone wrong), not a plan.
fn check_start(started_at: &StartedAt, now: chrono::DateTime<chrono::Utc>) -> ServiceResult<()> {
    started_at.check_not_after(now).map_err(|e| ServiceError::Invalid { field: "started_at", message: e.to_string() })
}

async fn replay<U: ActivityRepo>(
    uow: &mut U,
    retry: &IdempotencyRecord,
    first: IdempotencyRecord,
) -> ServiceResult<Created> {
    if first.fingerprint != retry.fingerprint {
        return Err(ServiceError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was already used for a different request".into(),
        });
    }
    match uow.activity_by_id(first.activity_id).await? {
        Some(activity) => Ok(Created::Replayed(activity)),
        None => Err(ServiceError::Conflict {
            code: "idempotency_key_reused",
            message: "the activity created with this Idempotency-Key has since been deleted".into(),
        }),
    }
}

/// What makes two creates "the same request": every client-supplied field.
fn fingerprint(activity: &Activity) -> Vec<u8> {
    let canonical = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}",
        activity.sport,
        activity.title.as_str(),
        activity.started_at.as_datetime().to_rfc3339(),
        activity.duration.seconds(),
        activity.distance.metres(),
        activity.visibility,
        activity.start_latlng.map(|p| (p.lat(), p.lon())),
    );
    Sha256::digest(canonical.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use stride_domain::Visibility;
    use stride_repository::mocks::{Access, MockUnitOfWork, ready};
    use stride_repository::testing::deadline;

    use super::*;
    use crate::test_support::{activity_of, clock, draft, person, store_of, views_of};

    fn service(units: Vec<(Access, MockUnitOfWork)>) -> ActivityService<stride_repository::mocks::MockStore> {
        let store = store_of(units);
        let limits = Limits::new(store.clone(), clock(), crate::LimitsConfig::default());
        ActivityService::new(store.clone(), clock(), ActivityWrites::default(), limits, views_of(store))
    }

    fn finding(activity: &Activity) -> MockUnitOfWork {
        let mut unit = MockUnitOfWork::new();
        let found = activity.clone();
        unit.expect_activity_by_id().returning(move |_| ready(Ok(Some(found.clone()))));
        unit
    }

    #[tokio::test]
    async fn what_others_see_follows_how_they_stand_and_the_rest_is_not_found() {
        use stride_domain::Tie;
        let (alice, bob) = (person("alice"), person("bob"));
        for (tie, visibility, visible) in [
            (Tie::None, Visibility::Public, true),
            (Tie::None, Visibility::Friends, false),
            (Tie::None, Visibility::Private, false),
            (Tie::Friends, Visibility::Public, true),
            (Tie::Friends, Visibility::Friends, true),
            (Tie::Friends, Visibility::Private, false),
            (Tie::Blocked, Visibility::Public, false),
        ] {
            let theirs = activity_of(&bob, visibility);
            let mut unit = finding(&theirs);
            unit.expect_tie().times(1).returning(move |_, _| ready(Ok(tie)));
            let activities = service(vec![(Access::Read, unit)]);
            let got = activities.get(deadline(), alice.id, theirs.id).await;
            assert_eq!(got.is_ok(), visible, "{tie:?} {visibility:?}: {got:?}");
            if !visible {
                assert!(matches!(got, Err(ServiceError::NotFound)), "{visibility:?}: {got:?}");
            }
        }
    }

    #[tokio::test]
    async fn changing_someone_elses_activity_is_not_found_and_writes_nothing() {
        let (alice, bob) = (person("alice"), person("bob"));
        let theirs = activity_of(&bob, Visibility::Public);
        let mut unit = MockUnitOfWork::new();
        let locked = theirs.clone();
        unit.expect_activity_by_id_for_update().returning(move |_| ready(Ok(Some(locked.clone()))));
        // Rolled back, so the connection is kept. No other expectation: an update, a delete
        // or a commit would fail the test.
        unit.expect_rollback().times(1).returning(|| ready(Ok(())));
        let activities = service(vec![(Access::Write, unit)]);
        let got = activities.delete(deadline(), alice.id, theirs.id).await;
        assert!(matches!(got, Err(ServiceError::NotFound)), "{got:?}");
    }

    #[tokio::test]
    async fn a_retried_create_replays_the_first_activity_and_writes_nothing() {
        let alice = person("alice");
        let first = activity_of(&alice, Visibility::Private);
        let record = IdempotencyRecord { fingerprint: fingerprint(&first), activity_id: first.id };
        let mut unit = finding(&first);
        unit.expect_find_idempotency_key().returning(move |_| ready(Ok(Some(record.clone()))));
        unit.expect_commit().times(1).returning(|| ready(Ok(())));
        let activities = service(vec![(Access::Write, unit)]);
        let key = IdempotencyKey::parse("retry-1").unwrap();
        let created = activities.create(deadline(), alice.id, draft(Visibility::Private), Some(key)).await.unwrap();
        assert_eq!(created, Created::Replayed(first));
    }

    #[tokio::test]
    async fn a_key_reused_for_a_different_request_is_a_conflict() {
        let alice = person("alice");
        let first = activity_of(&alice, Visibility::Private);
        let record = IdempotencyRecord { fingerprint: fingerprint(&first), activity_id: first.id };
        let mut unit = MockUnitOfWork::new();
        unit.expect_find_idempotency_key().returning(move |_| ready(Ok(Some(record.clone()))));
        unit.expect_rollback().times(1).returning(|| ready(Ok(())));
        let activities = service(vec![(Access::Write, unit)]);
        let key = IdempotencyKey::parse("retry-1").unwrap();
        let got = activities.create(deadline(), alice.id, draft(Visibility::Public), Some(key)).await;
        assert!(matches!(got, Err(ServiceError::Conflict { code: "idempotency_key_reused", .. })), "{got:?}");
    }

    #[tokio::test]
    async fn losing_the_race_for_a_key_answers_with_the_winners_activity() {
        let alice = person("alice");
        let winner = activity_of(&alice, Visibility::Private);
        let record = IdempotencyRecord { fingerprint: fingerprint(&winner), activity_id: winner.id };
        let mut losing = MockUnitOfWork::new();
        losing.expect_find_idempotency_key().returning(|_| ready(Ok(None)));
        losing
            .expect_record_idempotency_key()
            .returning(|_, _, _| ready(Err(RepoError::Conflict { constraint: "idempotency_keys_pkey".into() })));
        losing.expect_rollback().times(1).returning(|| ready(Ok(())));
        let mut rereading = finding(&winner);
        rereading.expect_find_idempotency_key().returning(move |_| ready(Ok(Some(record.clone()))));
        let activities = service(vec![(Access::Write, losing), (Access::Read, rereading)]);
        let key = IdempotencyKey::parse("race").unwrap();
        let created = activities.create(deadline(), alice.id, draft(Visibility::Private), Some(key)).await.unwrap();
        assert_eq!(created, Created::Replayed(winner));
    }

    #[tokio::test]
    async fn repository_timeouts_and_outages_keep_their_meaning() {
        let alice = person("alice");
        for (failure, expected) in [
            (RepoError::Timeout, "deadline exceeded"),
            (RepoError::Unavailable("down".into()), "dependency unavailable: down"),
            (RepoError::Corrupt("bad row".into()), "internal error: bad row"),
        ] {
            let mut unit = MockUnitOfWork::new();
            let failure = std::sync::Mutex::new(Some(failure));
            unit.expect_bump_stats_version().returning(move |_| ready(Err(failure.lock().unwrap().take().unwrap())));
            unit.expect_rollback().returning(|| ready(Ok(())));
            let activities = service(vec![(Access::Write, unit)]);
            let got = activities.create(deadline(), alice.id, draft(Visibility::Public), None).await.unwrap_err();
            assert_eq!(got.to_string(), expected);
        }
    }

    #[tokio::test]
    async fn a_start_more_than_a_day_ahead_is_refused_before_any_write() {
        let alice = person("alice");
        let mut ahead = draft(Visibility::Public);
        ahead.started_at = StartedAt::parse("2026-03-11T13:00:00Z").unwrap();
        let got = service(vec![]).create(deadline(), alice.id, ahead, None).await;
        assert!(matches!(got, Err(ServiceError::Invalid { field: "started_at", .. })), "{got:?}");
    }

    #[test]
    fn the_fingerprint_covers_every_client_field_and_no_server_one() {
        let alice = person("alice");
        let base = activity_of(&alice, Visibility::Private);
        type Change = fn(&mut Activity);
        let changes: [(&str, Change); 7] = [
            ("sport", |a| a.sport = stride_domain::Sport::Ride),
            ("title", |a| a.title = stride_domain::Title::parse("Evening run").unwrap()),
            ("started_at", |a| a.started_at = StartedAt::parse("2026-03-09T07:00:01+01:00").unwrap()),
            ("the offset alone", |a| a.started_at = StartedAt::parse("2026-03-09T06:00:00+00:00").unwrap()),
            ("duration", |a| a.duration = stride_domain::MovingTime::from_seconds(1801).unwrap()),
            ("distance", |a| a.distance = stride_domain::Distance::from_metres(5000.5).unwrap()),
            ("visibility", |a| a.visibility = Visibility::Public),
        ];
        for (field, change) in changes {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(fingerprint(&base), fingerprint(&changed), "{field}");
        }
        let mut located = base.clone();
        located.start_latlng = Some(stride_domain::LatLng::new(46.05, 14.5).unwrap());
        assert_ne!(fingerprint(&base), fingerprint(&located), "start_latlng");
        let mut moved = located.clone();
        moved.start_latlng = Some(stride_domain::LatLng::new(46.05, 14.6).unwrap());
        assert_ne!(fingerprint(&located), fingerprint(&moved), "start_latlng's longitude");

        let mut server_made = base.clone();
        server_made.id = ActivityId::new();
        server_made.created_at += chrono::TimeDelta::seconds(5);
        server_made.updated_at += chrono::TimeDelta::seconds(9);
        server_made.photo_count = 3;
        server_made.weather_status = stride_domain::WeatherStatus::Pending;
        assert_eq!(fingerprint(&base), fingerprint(&server_made), "server-made fields are not part of the request");
    }
}
