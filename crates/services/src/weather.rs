//! Weather enrichment: the `weather.enrich` job, and how it degrades when the API is slow.
//!
//! A lookup tries, in order: the in-process cache, the database cache (both by place rounded
//! to 0.1° and UTC hour), then the external API. When the API times out or fails, a cached
//! observation of the same place within ±3 hours stands in (`source: cached`, counted in
//! `weather_fallbacks_total`); without one the attempt fails and the runner retries it with
//! backoff, and the last attempt marks the activity's weather `unavailable`. A last attempt
//! that never ends by itself — its process killed, or the attempt timed out or panicked — is
//! discarded by the runner, which calls [`settle_abandoned`]: the activity is
//! then `unavailable` too unless another lookup for it is still open. Every write to the
//! activity is fenced by the start point and time the job looked up, so a job that raced a move
//! writes nothing — the move enqueued a job of its own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use stride_concurrency::{Deadline, RetryPolicy};
use stride_domain::{
    Activity, ActivityId, FALLBACK_WINDOW, Job, JobState, Lease, NewJob, Observation, RateLimit, Weather, WeatherCell,
    WeatherSource, WeatherStatus, WeatherTarget, nearest_observation, weather_days,
};
use stride_repository::{ActivityRepo, JobRepo, Store, UnitOfWork, WeatherApi, WeatherApiError, WeatherRepo};
use tokio_util::sync::CancellationToken;

use crate::jobs::{JobHandler, JobOutcome, KindConfig, Registered, complete_in};
use crate::pace::Pace;
use crate::uow::finish;
use crate::{Clock, ServiceError};

/// The job kind, as stored.
pub const WEATHER_KIND: &str = "weather.enrich";

/// The weather feature's settings; without an API it is off.
#[derive(Clone)]
pub struct WeatherConfig {
    /// `STRIDE_WEATHER_URL`'s client; `None` turns the feature off.
    pub api: Option<Arc<dyn WeatherApi>>,
    /// Attempts of one `weather.enrich` job before the weather is `unavailable`.
    pub max_attempts: u32,
    /// The wait before the first retry (doubling, with full jitter, up to an hour).
    pub first_retry: Duration,
    /// One attempt's budget (API call, cache reads and the write).
    pub timeout: Duration,
    /// Enrichments running at once in one process.
    pub concurrency: usize,
    /// Calls to the API per minute from one process (`STRIDE_WEATHER_RATE_PER_MIN`); lookups
    /// beyond it wait for their turn.
    pub calls_per_minute: u32,
    /// How long a failed call for a place and hour keeps every lookup of them from calling again.
    pub failure_ttl: Duration,
}

impl Default for WeatherConfig {
    fn default() -> Self {
        Self {
            api: None,
            max_attempts: 5,
            first_retry: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            concurrency: 4,
            calls_per_minute: 60,
            failure_ttl: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for WeatherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherConfig")
            .field("enabled", &self.api.is_some())
            .field("max_attempts", &self.max_attempts)
            .field("first_retry", &self.first_retry)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("calls_per_minute", &self.calls_per_minute)
            .field("failure_ttl", &self.failure_ttl)
            .finish()
    }
}

impl WeatherConfig {
    pub fn enabled(&self) -> bool {
        self.api.is_some()
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    activity_id: String,
}

/// The job for an activity whose start just appeared or moved: enqueue it in the same unit of
/// work as the write that set the activity's weather to `pending`.
/// At most one lookup per activity waits at a time. The job carries the activity's id only (its
/// handler reads the start the activity has when it runs), so a move while a lookup waits
/// renews that one instead of adding another; a move while a lookup runs adds at most one
/// follow-up, itself renewed by later moves. The two unique keys make both hold.
pub(crate) fn enrich_jobs(activity: ActivityId, now: DateTime<Utc>, max_attempts: u32) -> [NewJob; 2] {
    let payload = serde_json::json!({ "activity_id": activity.to_string() }).to_string();
    let job =
        |key: String| NewJob { unique_key: Some(key), ..NewJob::due(WEATHER_KIND, payload.clone(), max_attempts, now) };
    [job(format!("{WEATHER_KIND}:{activity}")), job(format!("{WEATHER_KIND}:{activity}:after-move"))]
}

/// Marks the activity's weather pending and returns its lookup job, if it has a start and the
/// feature is on. The caller enqueues the job in the unit of work that writes the activity.
pub(crate) fn weather_job(activity: &mut Activity, config: &WeatherConfig, now: DateTime<Utc>) -> Option<[NewJob; 2]> {
    if !config.enabled() {
        return None;
    }
    activity.await_weather().map(|_| enrich_jobs(activity.id, now, config.max_attempts))
}

fn activity_of(job: &Job) -> Result<ActivityId, String> {
    let payload: Payload = serde_json::from_str(&job.payload).map_err(|e| format!("bad payload: {e}"))?;
    payload.activity_id.parse().map_err(|_| "bad payload: activity_id".to_owned())
}

/// Settles the activity of a `weather.enrich` job that ended without a result — discarded
/// (its last attempt's process died, or it timed out or panicked) or cancelled by an operator:
/// the weather is `unavailable`, unless a newer lookup for the activity is still open (a move
/// enqueues one, and it owns the result). The write is fenced by the start the activity has
/// now, so a move racing this writes nothing. Idempotent: an activity no longer pending is
/// left alone. Needs no API, so the `stride jobs cancel` command calls it too. Returns whether
/// it wrote.
pub async fn settle_abandoned<S: Store>(store: &S, job: &Job, deadline: Deadline) -> Result<bool, String> {
    let id = activity_of(job)?;
    let mut uow = store.write(deadline).await.map_err(|e| e.to_string())?;
    let settled = async {
        // The activity first: a move commits its new start with its job, so once the new
        // start is read, the job is visible too.
        let target = match uow.activity_by_id(id).await? {
            Some(activity) if activity.weather_status == WeatherStatus::Pending => activity.weather_target(),
            _ => None,
        };
        let Some(target) = target else { return Ok(false) };
        if uow.count_open(WEATHER_KIND, &job.payload).await? > 0 {
            return Ok(false);
        }
        uow.record_weather(id, &target, WeatherStatus::Unavailable, None).await
    }
    .await
    .map_err(ServiceError::from);
    let written = finish(uow, settled).await.map_err(|e| e.to_string())?;
    if written {
        metrics::counter!("weather_unavailable_total").increment(1);
        tracing::warn!(activity = %id, job = %job.id, state = %job.state, "weather unavailable: its lookup ended without a result");
    }
    Ok(written)
}

/// Forgets the remembered API failure for the place and hour a `weather.enrich` job's activity
/// starts at, so that its next attempt asks the API (an operator's retry: the API is back).
pub async fn forget_failure<S: Store>(store: &S, job: &Job, deadline: Deadline) -> Result<(), String> {
    let id = activity_of(job)?;
    let mut uow = store.write(deadline).await.map_err(|e| e.to_string())?;
    let target = uow.activity_by_id(id).await.map_err(|e| e.to_string())?.and_then(|a| a.weather_target());
    if let Some(target) = target {
        let ended = Utc::now() - TimeDelta::seconds(1);
        uow.record_weather_failure(target.start.cell(), target.hour(), ended).await.map_err(|e| e.to_string())?;
    }
    uow.commit().await.map_err(|e| e.to_string())
}

/// `weather.enrich` as the runner sees it.
struct EnrichHandler<S>(WeatherService<S>);

impl<S: Store> JobHandler for EnrichHandler<S> {
    fn run(
        &self,
        lease: Lease,
        deadline: Deadline,
        _: CancellationToken,
    ) -> BoxFuture<'static, Result<JobOutcome, String>> {
        let service = self.0.clone();
        async move { service.enrich(lease, deadline).await }.boxed()
    }

    fn discarded(&self, job: Job, deadline: Deadline) -> BoxFuture<'static, Result<(), String>> {
        let store = self.0.store.clone();
        async move { settle_abandoned(&store, &job, deadline).await.map(|_| ()) }.boxed()
    }
}

/// Runs `weather.enrich`.
#[derive(Clone)]
pub struct WeatherService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    api: Arc<dyn WeatherApi>,
    config: WeatherConfig,
    /// In front of the database cache: observations by (cell, hour in µs).
    recent: Cache<(WeatherCell, i64), Observation>,
    /// The process's budget of API calls.
    pace: Arc<Pace>,
}

/// How one lookup ended.
enum Lookup {
    Found(Weather),
    /// Neither the API nor the cache had it; the reason.
    Missing(String),
}

impl<S: Store> WeatherService<S> {
    /// `None` when the feature is off.
    pub fn new(store: S, clock: Arc<dyn Clock>, config: WeatherConfig) -> Option<Self> {
        let api = config.api.clone()?;
        let recent = Cache::builder().max_capacity(50_000).time_to_live(Duration::from_secs(6 * 3600)).build();
        let pace = Arc::new(Pace::new(RateLimit::per_minute(config.calls_per_minute)));
        Some(Self { store, clock, api, config, recent, pace })
    }

    /// The kind to register with the job runner.
    pub fn registered(&self) -> Registered {
        let handler: Arc<dyn JobHandler> = Arc::new(EnrichHandler(self.clone()));
        Registered {
            config: KindConfig {
                name: WEATHER_KIND,
                timeout: self.config.timeout,
                concurrency: self.config.concurrency.max(1),
                backoff: RetryPolicy {
                    initial_delay: self.config.first_retry,
                    max_delay: Duration::from_secs(3600),
                    ..RetryPolicy::default()
                },
                lease: None,
            },
            handler,
        }
    }

    /// One attempt of `weather.enrich`.
    pub async fn enrich(&self, lease: Lease, deadline: Deadline) -> Result<JobOutcome, String> {
        let id = activity_of(&lease.job)?;
        let activity = {
            let mut uow = self.store.read(deadline).await.map_err(|e| e.to_string())?;
            uow.activity_by_id(id).await.map_err(|e| e.to_string())?
        };
        // `unavailable` too: an operator's `stride jobs retry` of a lookup that gave up asks
        // again, and the weather stays `unavailable` until it is found.
        let target = match activity {
            Some(activity)
                if matches!(activity.weather_status, WeatherStatus::Pending | WeatherStatus::Unavailable) =>
            {
                activity.weather_target()
            }
            _ => None,
        };
        let Some(target) = target else {
            // Deleted, cleared, or already settled by a newer job: nothing to do.
            return Ok(JobOutcome::Done);
        };
        match self.look_up(&lease, &target, deadline).await? {
            Lookup::Found(weather) => self.record_done(&lease, id, &target, weather, deadline).await,
            Lookup::Missing(reason) if lease.may_retry() => Err(reason),
            Lookup::Missing(reason) => {
                metrics::counter!("weather_unavailable_total").increment(1);
                tracing::warn!(activity = %id, %reason, "weather unavailable after the last attempt");
                let mut uow = self.store.write(deadline).await.map_err(|e| e.to_string())?;
                uow.record_weather(id, &target, WeatherStatus::Unavailable, None).await.map_err(|e| e.to_string())?;
                uow.commit().await.map_err(|e| e.to_string())?;
                // The job itself ends discarded, with the reason kept.
                Err(reason)
            }
        }
    }

    async fn look_up(&self, lease: &Lease, target: &WeatherTarget, deadline: Deadline) -> Result<Lookup, String> {
        let (cell, hour) = (target.start.cell(), target.hour());
        let cached = |observation| Lookup::Found(Weather { observation, source: WeatherSource::Cached });
        if let Some(observation) = self.recent.get(&(cell, hour.timestamp_micros())).await {
            metrics::counter!("weather_lookups_total", "source" => "memory").increment(1);
            return Ok(cached(observation));
        }
        if let Some(observation) = self.cached_near(cell, hour, TimeDelta::zero(), deadline).await? {
            metrics::counter!("weather_lookups_total", "source" => "database").increment(1);
            return Ok(cached(observation));
        }
        let (from, to) = weather_days(hour);
        let answer = match self.failed_lately(cell, hour, deadline).await? {
            Some(until) => Err(WeatherApiError::Failed(format!(
                "a call for this place and hour failed; not asked again before {until}"
            ))),
            None => self.call(lease, cell, hour, from, to, deadline).await?,
        };
        let failure = match answer {
            Ok(observations) => {
                metrics::counter!("weather_api_calls_total", "outcome" => "ok").increment(1);
                self.remember(cell, &observations, deadline).await?;
                match nearest_observation(&observations, hour, FALLBACK_WINDOW) {
                    Some(observation) => {
                        metrics::counter!("weather_lookups_total", "source" => "api").increment(1);
                        return Ok(Lookup::Found(Weather { observation, source: WeatherSource::Api }));
                    }
                    None => format!("the weather API has no observation within 3 h of {hour}"),
                }
            }
            Err(error) => {
                let outcome = if matches!(error, WeatherApiError::Timeout(_)) { "timeout" } else { "error" };
                metrics::counter!("weather_api_calls_total", "outcome" => outcome).increment(1);
                error.to_string()
            }
        };
        match self.cached_near(cell, hour, FALLBACK_WINDOW, deadline).await? {
            Some(observation) => {
                metrics::counter!("weather_fallbacks_total").increment(1);
                tracing::warn!(reason = %failure, observed_at = %observation.observed_at, "weather API failed; using a cached observation");
                Ok(cached(observation))
            }
            None => Ok(Lookup::Missing(failure)),
        }
    }

    async fn failed_lately(
        &self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<Option<DateTime<Utc>>, String> {
        let mut uow = self.store.read(deadline).await.map_err(|e| e.to_string())?;
        let until = uow.weather_failed_until(cell, hour).await.map_err(|e| e.to_string())?;
        Ok(until.filter(|until| *until > self.clock.now()))
    }

    /// One call to the API, in the process's budget (it waits for its turn within the attempt's
    /// deadline); a failure is remembered for the place and hour, unless the attempt no longer
    /// owns its job (cancelled or rescued meanwhile: an operator may have retried it because the
    /// API is back, and a stale failure must not stand in the retry's way).
    async fn call(
        &self,
        lease: &Lease,
        cell: WeatherCell,
        hour: DateTime<Utc>,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        deadline: Deadline,
    ) -> Result<Result<Vec<Observation>, WeatherApiError>, String> {
        if deadline.run(self.pace.turn()).await.is_err() {
            return Ok(Err(WeatherApiError::Failed("no API call left in this minute's budget".into())));
        }
        let answer = match deadline.run(self.api.hourly(cell, from, to)).await {
            Ok(answer) => answer,
            Err(_) => Err(WeatherApiError::Timeout(deadline.remaining())),
        };
        if answer.is_err() {
            let until =
                self.clock.now() + TimeDelta::from_std(self.config.failure_ttl).unwrap_or(TimeDelta::minutes(10));
            let mut uow = self.store.write(deadline).await.map_err(|e| e.to_string())?;
            let job = uow.job(lease.id()).await.map_err(|e| e.to_string())?;
            if job.is_some_and(|job| job.state == JobState::Running && job.attempt == lease.attempt()) {
                uow.record_weather_failure(cell, hour, until).await.map_err(|e| e.to_string())?;
            }
            uow.commit().await.map_err(|e| e.to_string())?;
        }
        Ok(answer)
    }

    async fn cached_near(
        &self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
        window: TimeDelta,
        deadline: Deadline,
    ) -> Result<Option<Observation>, String> {
        let mut uow = self.store.read(deadline).await.map_err(|e| e.to_string())?;
        let near = uow.cached_observations(cell, hour - window, hour + window).await.map_err(|e| e.to_string())?;
        let found = nearest_observation(&near, hour, window);
        if let Some(observation) = found.filter(|o| o.observed_at == hour) {
            self.recent.insert((cell, hour.timestamp_micros()), observation).await;
        }
        Ok(found)
    }

    /// Caches an answer, whatever becomes of this attempt: it serves other activities too.
    async fn remember(
        &self,
        cell: WeatherCell,
        observations: &[Observation],
        deadline: Deadline,
    ) -> Result<(), String> {
        let mut uow = self.store.write(deadline).await.map_err(|e| e.to_string())?;
        uow.cache_observations(cell, observations, self.clock.now()).await.map_err(|e| e.to_string())?;
        uow.commit().await.map_err(|e| e.to_string())?;
        for observation in observations {
            self.recent.insert((cell, observation.observed_at.timestamp_micros()), *observation).await;
        }
        Ok(())
    }

    /// The activity's weather and the job's completion, in one commit.
    async fn record_done(
        &self,
        lease: &Lease,
        id: ActivityId,
        target: &WeatherTarget,
        weather: Weather,
        deadline: Deadline,
    ) -> Result<JobOutcome, String> {
        let mut uow = self.store.write(deadline).await.map_err(|e| e.to_string())?;
        let written =
            uow.record_weather(id, target, WeatherStatus::Done, Some(weather)).await.map_err(|e| e.to_string())?;
        if !written {
            // Moved while this attempt looked. Usually a follow-up was enqueued for the new
            // start, but not when it was running too: then this one looks again, at once, the
            // attempt not counted.
            let awaiting = uow.activity_by_id(id).await.map_err(|e| e.to_string())?.and_then(|activity| {
                (activity.weather_status == WeatherStatus::Pending).then(|| activity.weather_target()).flatten()
            });
            if awaiting.is_some_and(|moved_to| moved_to != *target) {
                uow.rollback().await.map_err(|e| e.to_string())?;
                return Ok(JobOutcome::Snooze(Duration::ZERO));
            }
            tracing::debug!(activity = %id, "the activity was deleted or settled meanwhile");
        }
        if complete_in(&mut uow, lease, self.clock.now()).await.map_err(|e| e.to_string())? {
            uow.commit().await.map_err(|e| e.to_string())?;
            Ok(JobOutcome::Committed)
        } else {
            uow.rollback().await.map_err(|e| e.to_string())?;
            Err("the lease was lost; the weather is left to the attempt that owns it".to_owned())
        }
    }
}
