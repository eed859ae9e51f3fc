//! Weather enrichment end to end on both backends, against a local stub of the archive API
//! (answer, hang, fail): the job is enqueued with the write that sets a start, the API's answer
//! is recorded with `source: api` and then serves the same place and hour from the cache
//! without a call; a hanging API falls back to a cached hour within ±3 h (`source: cached`);
//! a failing API with nothing cached is retried with backoff and ends `unavailable`; moving or
//! clearing the start follows the activity, and a job that raced a move writes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stride_domain::{
    Activity, ActivityDraft, ActivityPatch, DisplayName, Distance, JobState, LatLng, MovingTime, Sport, StartedAt,
    TimeZone, Title, User, UserId, Username, Visibility, WeatherSource, WeatherStatus,
};
use stride_repository::testing::deadline;
use stride_repository::{JobRepo, LocalBlobStore, Store, UnitOfWork, UserRepo, WeatherRepo};
use stride_services::jobs::{JobRunner, JobService, RunReport, RunnerConfig};
use stride_services::weather_stub::{StubMode, WeatherStub};
use stride_services::{
    LimitsConfig, OpenMeteo, ServiceError, Settings, Stride, SystemClock, WEATHER_KIND, WeatherConfig,
};
use tokio_util::sync::CancellationToken;

stride_repository::each_backend!(
    store:
    an_answer_is_recorded_then_serves_the_same_place_and_hour_without_a_call,
    a_hanging_api_falls_back_to_a_cached_hour_nearby,
    a_failing_api_with_nothing_cached_is_retried_then_unavailable,
    moving_or_clearing_the_start_follows_the_activity,
    a_last_attempt_whose_worker_died_leaves_the_weather_unavailable,
    three_creates_and_ten_moves_while_the_api_fails_make_at_most_three_calls,
    start_points_set_by_hand_are_limited_per_user,
);

struct World<S: Store> {
    store: S,
    stride: Stride<S>,
    stub: WeatherStub,
    owner: UserId,
    _blobs: tempfile::TempDir,
}

async fn world<S: Store>(store: S, max_attempts: u32) -> World<S> {
    world_with(store, max_attempts, LimitsConfig::default()).await
}

async fn world_with<S: Store>(store: S, max_attempts: u32, limits: LimitsConfig) -> World<S> {
    let stub = WeatherStub::start().await;
    let api = OpenMeteo::new(&stub.url, Duration::from_millis(300)).unwrap();
    let weather = WeatherConfig {
        api: Some(Arc::new(api)),
        max_attempts,
        first_retry: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        concurrency: 2,
        ..WeatherConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let stride =
        Stride::new(store.clone(), Arc::new(SystemClock), blobs, Settings { weather, limits, ..Settings::default() })
            .unwrap();
    let owner = UserId::new();
    let username = Username::parse(&format!("w{}", &owner.to_string()[..8])).unwrap();
    let user = User {
        id: owner,
        display_name: DisplayName::from_username(&username),
        username,
        timezone: TimeZone::utc(),
        created_at: Utc::now(),
    };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_user(&user, "not-a-hash").await.unwrap();
    uow.commit().await.unwrap();
    World { store, stride, stub, owner, _blobs: dir }
}

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
}

impl<S: Store> World<S> {
    async fn create(&self, started_at: &str, start: Option<(f64, f64)>) -> Activity {
        let draft = ActivityDraft {
            sport: Sport::Run,
            title: Title::default(),
            started_at: StartedAt::parse(started_at).unwrap(),
            duration: MovingTime::from_seconds(1800).unwrap(),
            distance: Distance::from_metres(5000.0).unwrap(),
            visibility: Visibility::Public,
            start_latlng: start.map(|(lat, lon)| LatLng::new(lat, lon).unwrap()),
            description: None,
        };
        let created = self.stride.activities.create(deadline(), self.owner, draft, None).await.unwrap();
        created.activity().clone()
    }

    async fn reload(&self, activity: &Activity) -> Activity {
        self.stride.activities.get(deadline(), self.owner, activity.id).await.unwrap()
    }

    async fn weather_jobs(&self, state: JobState) -> u64 {
        self.weather_jobs_in(|s| s == state).await
    }

    /// One statement, so one consistent snapshot: counting state by state could miss a job
    /// that moves between the counts (running → retryable → running).
    async fn weather_jobs_in(&self, states: impl Fn(JobState) -> bool) -> u64 {
        let counts = JobService::new(self.store.clone(), Arc::new(SystemClock)).counts(deadline()).await.unwrap();
        counts.iter().filter(|(kind, s, _)| kind == WEATHER_KIND && states(*s)).map(|(_, _, n)| n).sum()
    }

    /// Runs the weather kind until no weather job is waiting or running, and reports.
    async fn run_jobs(&self) -> RunReport {
        let stop = CancellationToken::new();
        let config = RunnerConfig {
            poll_interval: Duration::from_millis(10),
            grace: Duration::from_secs(5),
            statement_budget: Duration::from_secs(10),
        };
        let registered = self.stride.weather.as_ref().expect("the feature is on").registered();
        let runner = JobRunner::new(self.store.clone(), Arc::new(SystemClock), config, vec![registered]);
        let running = tokio::spawn(runner.run(stop.clone()));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.weather_jobs_in(|state| !state.is_final()).await == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < give_up, "weather jobs never settled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        running.await.unwrap()
    }
}

async fn an_answer_is_recorded_then_serves_the_same_place_and_hour_without_a_call<S: Store>(store: S) {
    let world = world(store, 3).await;
    // 07:20 at +01:00 is 06:20 UTC: the nearest hour is 06:00, whose stub temperature is 6.5.
    let first = world.create("2026-03-01T07:20:00+01:00", Some((48.8566, 2.3322))).await;
    assert_eq!(first.weather_status, WeatherStatus::Pending);
    assert_eq!(world.weather_jobs(JobState::Available).await, 1, "enqueued with the activity");
    let report = world.run_jobs().await;
    assert_eq!((report.completed, report.failed), (1, 0), "{report:?}");
    let first = world.reload(&first).await;
    assert_eq!(first.weather_status, WeatherStatus::Done);
    let weather = first.weather.expect("recorded");
    assert_eq!(weather.source, WeatherSource::Api);
    assert_eq!(weather.observation.observed_at, at("2026-03-01T06:00:00Z"));
    assert_eq!(weather.observation.temperature_c, 6.5);
    assert_eq!((weather.observation.wind_speed_ms, weather.observation.precipitation_mm), (3.25, 0.4));
    assert_eq!(weather.observation.code, 61);
    let queries = world.stub.queries();
    assert_eq!(queries.len(), 1);
    let query = &queries[0];
    for (name, value) in [
        ("latitude", "48.9"),
        ("longitude", "2.3"),
        ("start_date", "2026-03-01"),
        ("end_date", "2026-03-01"),
        ("hourly", "temperature_2m,wind_speed_10m,precipitation,weather_code"),
        ("timezone", "GMT"),
        ("wind_speed_unit", "ms"),
    ] {
        assert_eq!(query.get(name).map(String::as_str), Some(value), "{name} in {query:?}");
    }

    // Another start in the same cell and hour: the cache answers, the API is not called.
    let second = world.create("2026-03-01T05:50:00Z", Some((48.8801, 2.2801))).await;
    world.run_jobs().await;
    let second = world.reload(&second).await;
    let weather = second.weather.expect("recorded");
    assert_eq!((second.weather_status, weather.source), (WeatherStatus::Done, WeatherSource::Cached));
    assert_eq!(weather.observation.observed_at, at("2026-03-01T06:00:00Z"));
    assert_eq!(world.stub.calls(), 1, "served from the cache");

    // No start point: no job, and the weather is none.
    let plain = world.create("2026-03-01T09:00:00Z", None).await;
    assert_eq!((plain.weather_status, plain.weather), (WeatherStatus::None, None));
    assert_eq!(world.weather_jobs(JobState::Available).await, 0);
}

async fn a_hanging_api_falls_back_to_a_cached_hour_nearby<S: Store>(store: S) {
    let world = world(store, 3).await;
    // Fills the cache with every hour of 1 March at this place.
    let noon = world.create("2026-03-01T12:00:00Z", Some((-33.87, 151.21))).await;
    world.run_jobs().await;
    assert_eq!(world.reload(&noon).await.weather_status, WeatherStatus::Done);

    // 01:00 on 2 March is not cached, but 23:00 on 1 March is, two hours away.
    world.stub.set(StubMode::Hang);
    let night = world.create("2026-03-02T01:10:00Z", Some((-33.86, 151.2))).await;
    let report = world.run_jobs().await;
    assert_eq!((report.completed, report.failed), (1, 0), "the fallback completes the job: {report:?}");
    assert_eq!(world.stub.calls(), 2, "the API was asked, and hung");
    let night = world.reload(&night).await;
    let weather = night.weather.expect("the cached neighbour stands in");
    assert_eq!((night.weather_status, weather.source), (WeatherStatus::Done, WeatherSource::Cached));
    assert_eq!(weather.observation.observed_at, at("2026-03-01T23:00:00Z"));
    assert_eq!(weather.observation.temperature_c, 23.5);
}

async fn a_failing_api_with_nothing_cached_is_retried_then_unavailable<S: Store>(store: S) {
    let world = world(store, 3).await;
    world.stub.set(StubMode::Fail);
    let activity = world.create("2026-03-01T07:00:00Z", Some((60.17, 24.94))).await;
    let report = world.run_jobs().await;
    assert_eq!((report.completed, report.failed), (0, 3), "three attempts, each failing: {report:?}");
    assert_eq!(world.stub.calls(), 1, "the failure is remembered for the place and hour: the retries do not call");
    assert_eq!(world.weather_jobs(JobState::Discarded).await, 1);
    let activity = world.reload(&activity).await;
    assert_eq!((activity.weather_status, activity.weather), (WeatherStatus::Unavailable, None));

    // Ten minutes later (the remembered failure ended)...
    let target = activity.weather_target().unwrap();
    let mut uow = world.store.write(deadline()).await.unwrap();
    uow.record_weather_failure(target.start.cell(), target.hour(), Utc::now()).await.unwrap();
    uow.commit().await.unwrap();

    // An operator retries the lookup once the API is back: it asks again, and the weather it
    // finds replaces `unavailable`.
    world.stub.set(StubMode::Answer);
    let operator = JobService::new(world.store.clone(), Arc::new(SystemClock));
    let gave_up = operator.list(deadline(), Some(JobState::Discarded), Some(WEATHER_KIND), 10).await.unwrap();
    operator.retry(deadline(), gave_up[0].id).await.unwrap();
    let report = world.run_jobs().await;
    assert_eq!((report.completed, report.failed), (1, 0), "{report:?}");
    let activity = world.reload(&activity).await;
    assert_eq!(activity.weather_status, WeatherStatus::Done);
    assert_eq!(activity.weather.map(|w| w.source), Some(WeatherSource::Api));
    assert_eq!(world.stub.calls(), 2);
}

async fn moving_or_clearing_the_start_follows_the_activity<S: Store>(store: S) {
    let world = world(store, 3).await;
    let activity = world.create("2026-03-01T07:00:00Z", Some((48.8566, 2.3322))).await;
    // Moved before its job ran: the first job finds the new place (or writes nothing), and
    // the second job owns the result.
    let moved = ActivityPatch { start_latlng: Some(Some(LatLng::new(51.5, -0.12).unwrap())), ..Default::default() };
    let updated = world.stride.activities.update(deadline(), world.owner, activity.id, moved).await.unwrap();
    assert_eq!(updated.weather_status, WeatherStatus::Pending);
    assert_eq!(world.weather_jobs(JobState::Available).await, 1, "the move renewed the waiting lookup");
    world.run_jobs().await;
    let done = world.reload(&activity).await;
    assert_eq!(done.weather_status, WeatherStatus::Done);
    let asked: Vec<_> = world.stub.queries().iter().map(|q| q["latitude"].clone()).collect();
    assert!(asked.iter().all(|lat| lat == "51.5"), "only the new place was looked up: {asked:?}");

    // A title change leaves the weather alone.
    let retitled = ActivityPatch { title: Some(Title::parse("Evening").unwrap()), ..Default::default() };
    let kept = world.stride.activities.update(deadline(), world.owner, activity.id, retitled).await.unwrap();
    assert_eq!((kept.weather_status, kept.weather), (WeatherStatus::Done, done.weather));

    // Clearing the start clears the weather and enqueues nothing.
    let cleared = ActivityPatch { start_latlng: Some(None), ..Default::default() };
    let cleared = world.stride.activities.update(deadline(), world.owner, activity.id, cleared).await.unwrap();
    assert_eq!((cleared.start_latlng, cleared.weather_status, cleared.weather), (None, WeatherStatus::None, None));
    assert_eq!(world.weather_jobs(JobState::Available).await, 0);
    assert_eq!(world.reload(&activity).await.weather_status, WeatherStatus::None);
}

async fn a_last_attempt_whose_worker_died_leaves_the_weather_unavailable<S: Store>(store: S) {
    // One attempt allowed. Each job is claimed here by a "worker" that dies at once: its
    // lease is already over when it commits, and nothing ever completes or fails the job.
    let world = world(store, 1).await;
    let store = world.store.clone();
    let die_during_last_attempt = |limit: u32| {
        let store = store.clone();
        async move {
            let now = Utc::now();
            let mut uow = store.write(deadline()).await.unwrap();
            let leases = uow.claim(WEATHER_KIND, now, now - chrono::TimeDelta::seconds(1), limit).await.unwrap();
            uow.commit().await.unwrap();
            leases
        }
    };

    // Alone: once the runner discards the dead attempt, the weather is unavailable.
    let lonely = world.create("2026-03-01T07:00:00Z", Some((60.17, 24.94))).await;
    // Moved while its first lookup was dying: the move's own lookup is still open when the
    // dead one is discarded, so it is left to answer.
    let moved = world.create("2026-03-01T09:00:00Z", Some((48.8566, 2.3322))).await;
    // One claim for both: a later claim would itself discard the first dead attempt, unseen by
    // any runner.
    assert_eq!(die_during_last_attempt(10).await.len(), 2);
    let patch = ActivityPatch { start_latlng: Some(Some(LatLng::new(51.5, -0.12).unwrap())), ..Default::default() };
    world.stride.activities.update(deadline(), world.owner, moved.id, patch).await.unwrap();

    world.run_jobs().await;
    assert_eq!(world.weather_jobs(JobState::Discarded).await, 2, "both dead attempts were discarded");
    assert_eq!(world.weather_jobs(JobState::Completed).await, 1, "the move's lookup ran");
    let moved = world.reload(&moved).await;
    assert_eq!(moved.weather_status, WeatherStatus::Done, "the open lookup owned the result");
    assert_eq!(world.stub.calls(), 1, "only the move's lookup called the API");
    // The runner tells the handler of its discards before it runs what the same claim took, so
    // by the time the move's lookup completed, the lone activity was settled.
    let lonely = world.reload(&lonely).await;
    assert_eq!((lonely.weather_status, lonely.weather), (WeatherStatus::Unavailable, None));
}

async fn three_creates_and_ten_moves_while_the_api_fails_make_at_most_three_calls<S: Store>(store: S) {
    let world = world(store, 5).await;
    world.stub.set(StubMode::Fail);
    let places = [(60.17, 24.94), (48.85, 2.35), (51.5, -0.12)];
    let mut created = Vec::new();
    for place in places {
        created.push(world.create("2026-03-01T07:00:00Z", Some(place)).await);
    }
    for step in 0..10 {
        let to = LatLng::new(40.0 + f64::from(step), -3.7).unwrap();
        let moved = ActivityPatch { start_latlng: Some(Some(to)), ..Default::default() };
        world.stride.activities.update(deadline(), world.owner, created[0].id, moved).await.unwrap();
    }
    assert_eq!(world.weather_jobs_in(|_| true).await, 3, "one lookup per activity, however often it moved");
    world.run_jobs().await;
    assert_eq!(world.stub.calls(), 3, "one call per place looked up; every retry met the remembered failure");
    let mut asked: Vec<_> = world.stub.queries().iter().map(|q| q["latitude"].clone()).collect();
    asked.sort();
    assert_eq!(asked, ["48.9", "49.0", "51.5"], "the first activity only at its last start (49.0, -3.7)");
    for activity in &created {
        assert_eq!(world.reload(activity).await.weather_status, WeatherStatus::Unavailable);
    }
}

async fn start_points_set_by_hand_are_limited_per_user<S: Store>(store: S) {
    let limits = LimitsConfig { start_points_per_user: stride_domain::RateLimit::per_hour(3), ..Default::default() };
    let world = world_with(store, 3, limits).await;
    for _ in 0..3 {
        world.create("2026-03-01T07:00:00Z", Some((60.17, 24.94))).await;
    }
    let draft = ActivityDraft {
        sport: Sport::Run,
        title: Title::default(),
        started_at: StartedAt::parse("2026-03-01T08:00:00Z").unwrap(),
        duration: MovingTime::from_seconds(1800).unwrap(),
        distance: Distance::from_metres(5000.0).unwrap(),
        visibility: Visibility::Public,
        start_latlng: Some(LatLng::new(60.17, 24.94).unwrap()),
        description: None,
    };
    let refused = world.stride.activities.create(deadline(), world.owner, draft, None).await;
    assert!(matches!(refused, Err(ServiceError::Throttled { .. })), "{:?}", refused.map(|_| ()));
    // Without a start nothing is counted; a patch that sets one is.
    let plain = world.create("2026-03-01T09:00:00Z", None).await;
    let moved = ActivityPatch { start_latlng: Some(Some(LatLng::new(1.0, 1.0).unwrap())), ..Default::default() };
    let refused = world.stride.activities.update(deadline(), world.owner, plain.id, moved).await;
    assert!(matches!(refused, Err(ServiceError::Throttled { .. })), "{refused:?}");
    assert_eq!(world.reload(&plain).await.start_latlng, None, "refused before anything was written");
    assert_eq!(world.weather_jobs_in(|_| true).await, 3);
}
