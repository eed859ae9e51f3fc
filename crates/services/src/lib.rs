//! The use cases of Stride, in domain terms.
//!
//! Services sit above `repository` and below `http`: they are generic over the repository's
//! [`Store`](stride_repository::Store) (the backend is picked once, in `server`), decide every
//! rule that needs I/O (authentication, who may see what, idempotent creation) and speak
//! [`ServiceError`], never SQL or HTTP. Every method takes a [`Deadline`](stride_concurrency::Deadline)
//! that it hands down to each repository call, so the time a request may take is decided at
//! the edge and enforced all the way into the database; dropping a service future cancels the
//! database work beneath it (an uncommitted unit of work rolls back).
//!
//! Architecture Invariant: services never depend on `http` and never see `sqlx` types.

mod access;
mod activities;
mod activity_write;
mod auth;
mod clock;
mod cpu;
mod error;
mod feed;
mod health;
mod idempotency;
pub mod imports;
pub mod jobs;
mod limits;
mod maintenance;
mod pace;
mod password;
pub mod photos;
mod records;
mod social;
mod stats;
#[cfg(test)]
mod test_support;
mod tracks;
mod uow;
mod weather;
#[cfg(feature = "testing")]
pub mod weather_stub;

pub use access::relationship;
pub use activities::{ActivityPage, ActivityService, Created};
pub use activity_write::ActivityWrites;
pub use auth::{AuthConfig, AuthService, Caller, Registration, SessionToken, SignedIn, derive_key};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cpu::{CpuPool, CpuPoolConfig, Threads};
pub use error::{ServiceError, ServiceResult};
pub use feed::{FeedConfig, FeedItem, FeedPage, FeedService, Strategy as FeedStrategy};
pub use health::HealthService;
pub use idempotency::IdempotencyKey;
pub use imports::{IMPORT_KIND, ImportConfig, ImportCreated, ImportFile, ImportOptions, ImportService};
pub use limits::{LimitsConfig, client_network};
pub use maintenance::{MaintenanceService, Purged};
pub use password::HashingConfig;
pub use photos::{Delivery, PhotoConfig, PhotoService, Served, UploadAdmission, UploadFile, Uploaded};
pub use records::{
    EffortView, MAX_PERIODS, PeriodStats, PeriodTotalsView, REBUILD_KIND, RebuildProgress, Rebuilt, Records,
    RecordsService, distances_mm,
};
pub use social::{Blocked, Page, RequestSent, SocialConfig, SocialService};
pub use stats::{MAX_WEEKS, StatsConfig, StatsService, UserStats, WeekTotals, WeeklyStats};
/// Re-exported so the http layer can mint request deadlines without depending on `workers`.
pub use stride_concurrency::Deadline;
/// The repository's mockall doubles, for unit tests of the layers above services.
#[cfg(feature = "mocks")]
pub use stride_repository::mocks;
/// Re-exported so `server` can build the blob store it picks and hand it in.
pub use stride_repository::{BlobStore, LocalBlobStore, PhotoSelection, SharedBlobStore};
pub use stride_repository::{OpenMeteo, WeatherApi, WeatherApiError};
/// Re-exported so the http layer can name the backend bound without depending on `repository`.
pub use stride_repository::{PoolStats, Store};
/// Whether bytes start like a zip archive: an import's form tells archives from track files.
pub use stride_tracks::is_zip;
pub use stride_tracks::route::decode as decode_polyline;
pub use stride_tracks::{Resolution, StreamKey};
pub use tracks::{Column, TrackService, TrackViews};
pub use weather::{WEATHER_KIND, WeatherConfig, WeatherService, forget_failure, settle_abandoned};

use std::sync::Arc;

/// Every use case of one running Stride, over one backend.
#[derive(Clone)]
pub struct Stride<S> {
    pub auth: AuthService<S>,
    pub activities: ActivityService<S>,
    pub stats: StatsService<S>,
    pub health: HealthService<S>,
    pub maintenance: MaintenanceService<S>,
    pub photos: PhotoService<S>,
    pub social: SocialService<S>,
    pub feed: FeedService<S>,
    pub jobs: jobs::JobService<S>,
    pub imports: ImportService<S>,
    pub tracks: TrackService<S>,
    pub records: RecordsService<S>,
    /// `None` when the weather feature is off (`STRIDE_WEATHER_URL` unset).
    pub weather: Option<WeatherService<S>>,
}

/// The settings of the use cases, each with its documented default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub auth: AuthConfig,
    pub stats: StatsConfig,
    pub photos: PhotoConfig,
    pub social: SocialConfig,
    pub feed: FeedConfig,
    pub weather: WeatherConfig,
    pub limits: LimitsConfig,
    pub imports: ImportConfig,
}

impl<S: Store> Stride<S> {
    pub fn new(store: S, clock: Arc<dyn Clock>, blobs: SharedBlobStore, settings: Settings) -> ServiceResult<Self> {
        let Settings { auth, stats, photos, social, feed, weather, limits, imports } = settings;
        let mut limits = limits::Limits::new(store.clone(), clock.clone(), limits);
        if let Some(url) = &stats.redis_url {
            let redis = stride_cache::RedisTier::new(url, 8, stats.redis_timeout).map_err(ServiceError::Internal)?;
            limits = limits.with_redis(Arc::new(redis));
        }
        // One pool of CPU threads for photos and tracks alike: the machine has only so many cores.
        let cpu = CpuPool::per_core();
        let storage = photos::storage::Storage::new(blobs.clone(), photos.storage_timeout, photos.retry);
        let writes = ActivityWrites::new(weather.clone());
        let photos = PhotoService::new(store.clone(), blobs, cpu.clone(), clock.clone(), photos);
        let imports = ImportService::new(
            store.clone(),
            clock.clone(),
            storage.clone(),
            cpu.clone(),
            writes.clone(),
            photos.clone(),
            imports,
        );
        let views = TrackViews::new(store.clone(), storage, cpu);
        Ok(Self {
            social: SocialService::new(store.clone(), clock.clone(), social, limits.clone()),
            feed: FeedService::new(store.clone(), feed).with_track_views(views.clone()),
            tracks: TrackService::new(store.clone(), clock.clone(), views.clone()),
            records: RecordsService::new(store.clone(), clock.clone(), views.clone()),
            jobs: jobs::JobService::new(store.clone(), clock.clone()),
            auth: AuthService::new(store.clone(), clock.clone(), auth, limits.clone()),
            activities: ActivityService::new(store.clone(), clock.clone(), writes, limits.clone(), views),
            imports,
            weather: WeatherService::new(store.clone(), clock.clone(), weather),
            photos,
            stats: StatsService::new(store.clone(), clock.clone(), stats)?,
            health: HealthService::new(store.clone()),
            maintenance: MaintenanceService::new(store, clock),
        })
    }
}
