//! mockall doubles of the repository boundary, for the unit tests of the layers above
//! (`mocks` feature).
//!
//! Every repository trait and [`UnitOfWork`] are mocked by mockall as written: their methods
//! return `impl Future + Send`, which mockall turns into expectations returning
//! `Pin<Box<dyn Future>>` (write `.returning(|..| Box::pin(async { … }))`, or use [`ready`]).
//! [`Store`] is the one trait mockall cannot take as written: it has an associated type, an
//! associated constant and a static constructor, and it is `Clone` with every clone sharing one
//! backend, while a mockall `clone` would hand out a fresh mock without expectations. So
//! [`MockStore`] is a small hand-written `Store` whose `read` and `write` are answered by a
//! shared mockall mock ([`MockUnits`]): a test states how many units of work it expects and
//! what each one does, and mockall checks both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use stride_concurrency::Deadline;
use stride_domain::{
    Activity, ActivityCursor, ActivityId, Admission, BestEffort, BlockedUser, Connection, DayNumber, Extreme,
    FriendRequest, FriendRequestId, Import, ImportId, ImportItem, ImportState, Job, JobId, JobState, Lease, ListCursor,
    NewJob, Observation, PeriodTotals, Photo, PhotoId, PrivacyZone, Problem, Profile, RankedEffort, RateLimit,
    RequestDirection, Sport, StatsScope, StreakRun, StreakRunEdit, Tie, User, UserId, Username, Visibility, Weather,
    WeatherCell, WeatherStatus, WeatherTarget, ZoneId,
};

use crate::{
    ActivityRepo, Backend, Credentials, FeedRepo, IdempotencyRecord, IdempotencyRepo, IdempotencyScope, ImportRepo,
    ItemOutcome, JobRepo, LimitRepo, NewSession, PhotoRepo, PhotoSelection, PhotoUploadRecord, PoolStats, ProfileRepo,
    QueueDepth, RecordsRepo, RelationshipRepo, RepoResult, SessionRepo, SessionUser, StatsRepo, StatsSubject,
    StatsTotals, Store, StoreConfig, TrackFile, UnitOfWork, UserRepo, WeatherRepo, ZoneRepo,
};

/// A mocked blob store (the object-safe face the services hold).
pub use crate::blobs::MockDynBlobStore;

/// What a mocked repository method returns.
pub type Answer<T> = Pin<Box<dyn Future<Output = RepoResult<T>> + Send>>;

/// An answer that is ready at once.
pub fn ready<T: Send + 'static>(result: RepoResult<T>) -> Answer<T> {
    Box::pin(std::future::ready(result))
}

mockall::mock! {
    /// One unit of work: every repository of the contract, and commit.
    pub UnitOfWork {}

    impl UserRepo for UnitOfWork {
        fn insert_user(&mut self, user: &User, password_hash: &str) -> impl Future<Output = RepoResult<()>> + Send;
        fn user_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<User>>> + Send;
        fn user_by_id_for_update(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<User>>> + Send;
        fn credentials_by_username(&mut self, username: &Username)
            -> impl Future<Output = RepoResult<Option<Credentials>>> + Send;
        fn update_user_profile(&mut self, user: &User) -> impl Future<Output = RepoResult<()>> + Send;
    }

    impl SessionRepo for UnitOfWork {
        fn insert_session(&mut self, session: &NewSession) -> impl Future<Output = RepoResult<()>> + Send;
        fn user_by_session(&mut self, token_hash: &[u8; 32], now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<Option<SessionUser>>> + Send;
        fn delete_session(&mut self, token_hash: &[u8; 32]) -> impl Future<Output = RepoResult<bool>> + Send;
        fn delete_expired_sessions(&mut self, now: DateTime<Utc>, limit: u32) -> impl Future<Output = RepoResult<u64>> + Send;
    }

    impl ActivityRepo for UnitOfWork {
        fn insert_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
        fn activity_by_id(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
        fn activity_by_id_for_update(&mut self, id: ActivityId)
            -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
        fn list_activities(&mut self, owner: UserId, after: Option<ActivityCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
        fn update_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
        fn delete_activity(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<bool>> + Send;
    }

    impl IdempotencyRepo for UnitOfWork {
        fn find_idempotency_key<'a>(&mut self, scope: IdempotencyScope<'a>)
            -> impl Future<Output = RepoResult<Option<IdempotencyRecord>>> + Send;
        fn record_idempotency_key<'a>(&mut self, scope: IdempotencyScope<'a>, record: &IdempotencyRecord, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn delete_idempotency_keys_before(&mut self, not_before: DateTime<Utc>, limit: u32)
            -> impl Future<Output = RepoResult<u64>> + Send;
    }

    impl ProfileRepo for UnitOfWork {
        fn profile_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
        fn profile_by_username(&mut self, username: &Username) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
        fn profiles(&mut self, ids: &[UserId]) -> impl Future<Output = RepoResult<Vec<Profile>>> + Send;
    }

    impl RelationshipRepo for UnitOfWork {
        fn tie(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<Tie>> + Send;
        fn lock_pair(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<()>> + Send;
        fn social_version(&mut self, user: UserId) -> impl Future<Output = RepoResult<Option<i64>>> + Send;
        fn insert_friend_request(&mut self, id: FriendRequestId, from: UserId, to: UserId, at: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn request_between(&mut self, from: UserId, to: UserId)
            -> impl Future<Output = RepoResult<Option<FriendRequestId>>> + Send;
        fn friend_request(&mut self, id: FriendRequestId) -> impl Future<Output = RepoResult<Option<FriendRequest>>> + Send;
        fn delete_friend_request(&mut self, id: FriendRequestId) -> impl Future<Output = RepoResult<bool>> + Send;
        fn delete_requests_between(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<()>> + Send;
        fn friend_requests(&mut self, user: UserId, direction: RequestDirection, after: Option<ListCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<FriendRequest>>> + Send;
        fn pending_outgoing(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
        fn record_request_send(&mut self, user: UserId, at: DateTime<Utc>, forget_before: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn request_sends_since(&mut self, user: UserId, since: DateTime<Utc>)
            -> impl Future<Output = RepoResult<(u64, Option<DateTime<Utc>>)>> + Send;
        fn insert_friendship(&mut self, a: UserId, b: UserId, since: DateTime<Utc>) -> impl Future<Output = RepoResult<()>> + Send;
        fn delete_friendship(&mut self, a: UserId, b: UserId) -> impl Future<Output = RepoResult<bool>> + Send;
        fn friend_count(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
        fn friends(&mut self, user: UserId, after: Option<ListCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Connection>>> + Send;
        fn friend_ids(&mut self, user: UserId) -> impl Future<Output = RepoResult<Vec<UserId>>> + Send;
        fn insert_block(&mut self, blocker: UserId, blocked: UserId, at: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn delete_block(&mut self, blocker: UserId, blocked: UserId) -> impl Future<Output = RepoResult<bool>> + Send;
        fn block_since(&mut self, blocker: UserId, blocked: UserId) -> impl Future<Output = RepoResult<Option<DateTime<Utc>>>> + Send;
        fn blocks(&mut self, blocker: UserId, after: Option<ListCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<BlockedUser>>> + Send;
    }

    impl FeedRepo for UnitOfWork {
        fn feed_chunk(&mut self, authors: &[UserId], after: Option<ActivityCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
        fn feed_reference(&mut self, authors: &[UserId], after: Option<ActivityCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
        fn activities_visible(&mut self, owner: UserId, visible: &[Visibility], after: Option<ActivityCursor>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
    }

    impl JobRepo for UnitOfWork {
        fn enqueue(&mut self, job: &NewJob, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn claim(&mut self, kind: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Lease>>> + Send;
        fn discard_expired_last(&mut self, kind: &str, now: DateTime<Utc>) -> impl Future<Output = RepoResult<Vec<Job>>> + Send;
        fn count_open(&mut self, kind: &str, payload: &str) -> impl Future<Output = RepoResult<u64>> + Send;
        fn heartbeat(&mut self, id: JobId, attempt: u32, lease_until: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn complete(&mut self, id: JobId, attempt: u32, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn complete_batch(&mut self, fences: &[(JobId, u32)], now: DateTime<Utc>) -> impl Future<Output = RepoResult<u64>> + Send;
        fn fail(&mut self, id: JobId, attempt: u32, error: &str, retry_at: Option<DateTime<Utc>>, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<bool>> + Send;
        fn reschedule(&mut self, id: JobId, attempt: u32, run_at: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn job(&mut self, id: JobId) -> impl Future<Output = RepoResult<Option<Job>>> + Send;
        fn jobs(&mut self, state: Option<JobState>, kind: Option<String>, limit: u32) -> impl Future<Output = RepoResult<Vec<Job>>> + Send;
        fn job_counts(&mut self) -> impl Future<Output = RepoResult<Vec<(String, JobState, u64)>>> + Send;
        fn queue_depths(&mut self, now: DateTime<Utc>) -> impl Future<Output = RepoResult<Vec<QueueDepth>>> + Send;
        fn retry_job(&mut self, id: JobId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn cancel_job(&mut self, id: JobId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn renew_waiting(&mut self, unique_key: &str, max_attempts: u32, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<bool>> + Send;
        fn purge_finished_jobs(&mut self, before: DateTime<Utc>, limit: u32) -> impl Future<Output = RepoResult<u64>> + Send;
    }

    impl LimitRepo for UnitOfWork {
        fn take(&mut self, key: &str, limit: RateLimit, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<Admission>> + Send;
        fn forget(&mut self, key: &str) -> impl Future<Output = RepoResult<()>> + Send;
        fn give_back(&mut self, key: &str, limit: RateLimit) -> impl Future<Output = RepoResult<()>> + Send;
        fn delete_full_buckets(&mut self, now: DateTime<Utc>, limit: u32)
            -> impl Future<Output = RepoResult<u64>> + Send;
        fn server_key(&mut self, name: &str, candidate: &str) -> impl Future<Output = RepoResult<String>> + Send;
    }

    impl WeatherRepo for UnitOfWork {
        fn cached_observations(&mut self, cell: WeatherCell, from: DateTime<Utc>, to: DateTime<Utc>)
            -> impl Future<Output = RepoResult<Vec<Observation>>> + Send;
        fn cache_observations(&mut self, cell: WeatherCell, observations: &[Observation], now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn record_weather(&mut self, activity: ActivityId, target: &WeatherTarget, status: WeatherStatus, weather: Option<Weather>)
            -> impl Future<Output = RepoResult<bool>> + Send;
        fn weather_failed_until(&mut self, cell: WeatherCell, hour: DateTime<Utc>)
            -> impl Future<Output = RepoResult<Option<DateTime<Utc>>>> + Send;
        fn record_weather_failure(&mut self, cell: WeatherCell, hour: DateTime<Utc>, until: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn delete_weather_failures_before(&mut self, now: DateTime<Utc>, limit: u32)
            -> impl Future<Output = RepoResult<u64>> + Send;
    }

    impl PhotoRepo for UnitOfWork {
        fn insert_photo(&mut self, photo: &Photo) -> impl Future<Output = RepoResult<()>> + Send;
        fn photo_by_id(&mut self, id: PhotoId) -> impl Future<Output = RepoResult<Option<Photo>>> + Send;
        fn photos_of_activity(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Vec<Photo>>> + Send;
        fn next_photo_position(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<u32>> + Send;
        fn delete_photo(&mut self, photo: &Photo) -> impl Future<Output = RepoResult<bool>> + Send;
        fn photos_to_reprocess(&mut self, selection: PhotoSelection, current: u32, after: Option<PhotoId>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Photo>>> + Send;
        fn storage_used(&mut self, user: UserId) -> impl Future<Output = RepoResult<u64>> + Send;
        fn count_photos(&mut self, selection: PhotoSelection, current: u32)
            -> impl Future<Output = RepoResult<(u64, u64)>> + Send;
        fn replace_renditions(&mut self, photo: &Photo, from_version: u32) -> impl Future<Output = RepoResult<bool>> + Send;
        fn find_photo_upload_key<'a>(&mut self, scope: IdempotencyScope<'a>)
            -> impl Future<Output = RepoResult<Option<PhotoUploadRecord>>> + Send;
        fn record_photo_upload_key<'a>(&mut self, scope: IdempotencyScope<'a>, record: &PhotoUploadRecord, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
    }

    impl StatsRepo for UnitOfWork {
        fn stats_subject(&mut self, user: UserId) -> impl Future<Output = RepoResult<Option<StatsSubject>>> + Send;
        fn stats_totals(&mut self, user: UserId, scope: StatsScope) -> impl Future<Output = RepoResult<StatsTotals>> + Send;
        fn latest_run_starting_by(&mut self, user: UserId, scope: StatsScope, day: DayNumber)
            -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
        fn longest_run(&mut self, user: UserId, scope: StatsScope)
            -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
        fn bump_stats_version(&mut self, user: UserId) -> impl Future<Output = RepoResult<()>> + Send;
        fn adjust_totals(&mut self, user: UserId, scope: StatsScope, delta: StatsTotals)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn adjust_day(&mut self, user: UserId, scope: StatsScope, day: DayNumber, delta: i32)
            -> impl Future<Output = RepoResult<i64>> + Send;
        fn run_ending_at(&mut self, user: UserId, scope: StatsScope, day: DayNumber)
            -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
        fn run_starting_at(&mut self, user: UserId, scope: StatsScope, day: DayNumber)
            -> impl Future<Output = RepoResult<Option<StreakRun>>> + Send;
        fn apply_run_edit(&mut self, user: UserId, scope: StatsScope, edit: StreakRunEdit)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn adjust_week(&mut self, user: UserId, week_start: DayNumber, delta: StatsTotals)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn weeks(&mut self, user: UserId, first: DayNumber, last: DayNumber)
            -> impl Future<Output = RepoResult<Vec<(DayNumber, StatsTotals)>>> + Send;
    }

    impl ImportRepo for UnitOfWork {
        fn insert_import(&mut self, import: &Import, items: &[ImportItem]) -> impl Future<Output = RepoResult<()>> + Send;
        fn import_by_id(&mut self, id: ImportId) -> impl Future<Output = RepoResult<Option<Import>>> + Send;
        fn list_imports(&mut self, user: UserId, after: Option<(DateTime<Utc>, ImportId)>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<Import>>> + Send;
        fn import_items(&mut self, import: ImportId, from: u32, limit: u32)
            -> impl Future<Output = RepoResult<Vec<ImportItem>>> + Send;
        fn active_imports(&mut self, user: UserId) -> impl Future<Output = RepoResult<u32>> + Send;
        fn start_import(&mut self, id: ImportId) -> impl Future<Output = RepoResult<bool>> + Send;
        fn finish_import<'a>(&mut self, id: ImportId, state: ImportState, error: Option<&'a Problem>, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<bool>> + Send;
        fn cancel_import(&mut self, id: ImportId, now: DateTime<Utc>) -> impl Future<Output = RepoResult<bool>> + Send;
        fn settle_item(&mut self, import: ImportId, index: u32, outcome: &ItemOutcome, warnings: &[Problem])
            -> impl Future<Output = RepoResult<bool>> + Send;
        fn fail_queued_items(&mut self, import: ImportId, problem: &Problem) -> impl Future<Output = RepoResult<u64>> + Send;
        fn hold_lease(&mut self, job: JobId, attempt: u32) -> impl Future<Output = RepoResult<bool>> + Send;
        fn find_import_key(&mut self, user: UserId, key: &str, not_before: DateTime<Utc>)
            -> impl Future<Output = RepoResult<Option<ImportId>>> + Send;
        fn record_import_key(&mut self, user: UserId, key: &str, import: ImportId, not_before: DateTime<Utc>, now: DateTime<Utc>)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn blob_named_by_import(&mut self, key: &str) -> impl Future<Output = RepoResult<bool>> + Send;
        fn activity_with_file(&mut self, user: UserId, sha256: &[u8])
            -> impl Future<Output = RepoResult<Option<ActivityId>>> + Send;
        fn insert_track_file(&mut self, file: &TrackFile) -> impl Future<Output = RepoResult<()>> + Send;
        fn track_file(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Option<TrackFile>>> + Send;
        fn plan_import(&mut self, id: ImportId, items: &[ImportItem]) -> impl Future<Output = RepoResult<bool>> + Send;
        fn record_progress(&mut self, id: ImportId, rate_per_s: f64) -> impl Future<Output = RepoResult<()>> + Send;
        fn activity_with_strava_id(&mut self, user: UserId, strava_id: &str) -> impl Future<Output = RepoResult<Option<ActivityId>>> + Send;
        fn insert_strava_id(&mut self, user: UserId, strava_id: &str, activity: ActivityId) -> impl Future<Output = RepoResult<()>> + Send;
    }

    impl ZoneRepo for UnitOfWork {
        fn insert_zone(&mut self, zone: &PrivacyZone) -> impl Future<Output = RepoResult<()>> + Send;
        fn zones_of(&mut self, user: UserId) -> impl Future<Output = RepoResult<Vec<PrivacyZone>>> + Send;
        fn delete_zone(&mut self, user: UserId, id: ZoneId) -> impl Future<Output = RepoResult<bool>> + Send;
    }

    impl RecordsRepo for UnitOfWork {
        fn replace_efforts(&mut self, activity: ActivityId, efforts: &[BestEffort], version: i32)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn sync_efforts(&mut self, activity: ActivityId, user: UserId, sport: Sport, visibility: Visibility, started_at_us: i64)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn efforts_of(&mut self, activity: ActivityId) -> impl Future<Output = RepoResult<Vec<BestEffort>>> + Send;
        fn best_of(&mut self, user: UserId, sport: Sport, distance_mm: i64, visibilities: &[Visibility], limit: u32)
            -> impl Future<Output = RepoResult<Vec<RankedEffort>>> + Send;
        fn longest(&mut self, user: UserId, sport: Sport, visibilities: &[Visibility])
            -> impl Future<Output = RepoResult<Option<Extreme>>> + Send;
        fn biggest_climb(&mut self, user: UserId, sport: Sport, visibilities: &[Visibility])
            -> impl Future<Output = RepoResult<Option<Extreme>>> + Send;
        fn adjust_month(&mut self, user: UserId, month_start: DayNumber, sport: Sport, delta: PeriodTotals)
            -> impl Future<Output = RepoResult<()>> + Send;
        fn months(&mut self, user: UserId, first: DayNumber, last: DayNumber, sport: Option<Sport>)
            -> impl Future<Output = RepoResult<Vec<(DayNumber, PeriodTotals)>>> + Send;
        fn activities_needing_efforts(&mut self, version: i32, user: Option<UserId>, after: Option<ActivityId>, limit: u32)
            -> impl Future<Output = RepoResult<Vec<ActivityId>>> + Send;
    }

    impl UnitOfWork for UnitOfWork {
        fn commit(self) -> impl Future<Output = RepoResult<()>> + Send;
        fn rollback(self) -> impl Future<Output = RepoResult<()>> + Send;
        fn ping(&mut self) -> impl Future<Output = RepoResult<()>> + Send;
    }
}

/// Whether a unit of work was asked for reading or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

mockall::mock! {
    /// The units of work a [`MockStore`] hands out, in the order they are asked for.
    pub Units {
        pub fn open(&self, access: Access) -> RepoResult<MockUnitOfWork>;
    }
}

/// A `Store` over [`MockUnits`]; clones share it, as clones of a real store share its pools.
#[derive(Clone)]
pub struct MockStore {
    units: Arc<MockUnits>,
}

impl MockStore {
    pub fn new(units: MockUnits) -> Self {
        Self { units: Arc::new(units) }
    }
}

impl Store for MockStore {
    type Uow = MockUnitOfWork;

    const BACKEND: Backend = Backend::Sqlite;

    async fn connect(_: &StoreConfig) -> RepoResult<Self> {
        Err(crate::RepoError::Other("a MockStore is built by its test, never connected".into()))
    }

    async fn migrate(&self) -> RepoResult<()> {
        Ok(())
    }

    async fn read(&self, _: Deadline) -> RepoResult<MockUnitOfWork> {
        self.units.open(Access::Read)
    }

    async fn write(&self, _: Deadline) -> RepoResult<MockUnitOfWork> {
        self.units.open(Access::Write)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }

    async fn close(&self) {}
}
