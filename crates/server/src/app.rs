//! Wiring: configuration in, a bound and ready-to-serve application out.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use futures::future::BoxFuture;
use stride_http::{HttpConfig, InFlight, install_metrics_recorder};
use stride_repository::{Backend, LocalBlobStore, PgStore, SharedBlobStore, SqliteStore, Store, StoreConfig, redact};
use stride_services::{Clock, Stride, SystemClock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::housekeeping::{Housekeeping, background, kinds, periodic};
use crate::serve::{ConnectionLimits, serve};

/// A Stride whose database is migrated and whose listener is bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// `/metrics` on a listener of its own (`STRIDE_METRICS_LISTEN`), if configured.
    metrics: Option<(TcpListener, Router)>,
    limits: ConnectionLimits,
    /// Closes the chosen backend's pools once serving has stopped; built at launch, when the
    /// store's type is still known, so nothing after launch needs to know it.
    close_store: BoxFuture<'static, ()>,
    /// The server's own periodic work (today: purging what expired), started when serving
    /// starts and joined before the pools close. Built at launch, while the store's type is
    /// known.
    housekeeping: Housekeeping,
    in_flight: InFlight,
    shutdown_grace: Duration,
}

/// What a launch is for: serving, or only bringing the schema up to date (`stride migrate`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Serve,
    Migrate,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`build`](Self::build) with an injected clock, for tests that pin "now".
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let app = launch(config, clock, Purpose::Serve).await?;
        app.ok_or_else(|| anyhow::anyhow!("a launch to serve returned no application"))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Serves until `shutdown` resolves; then stops accepting connections, lets in-flight
    /// requests finish within the grace period (aborting what is left after it), and closes
    /// the database pools.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { listener, router, metrics, close_store, housekeeping, in_flight, shutdown_grace, limits } = self;
        let stop_housekeeping = CancellationToken::new();
        let housekeeping = tokio::spawn(housekeeping(stop_housekeeping.clone()));
        let stop_serving = CancellationToken::new();
        let api = tokio::spawn(serve(listener, router, limits, stop_serving.clone(), shutdown_grace));
        let metrics = metrics.map(|(listener, router)| {
            tokio::spawn(serve(listener, router, limits, stop_serving.clone(), shutdown_grace))
        });

        shutdown.await;
        tracing::info!(in_flight = in_flight.current(), "shutting down: no new connections, draining requests");
        stop_serving.cancel();
        let served = api.await.context("the server task failed");
        if let Some(metrics) = metrics {
            metrics.await.context("the metrics server task failed")?;
        }
        stop_housekeeping.cancel();
        if let Err(e) = housekeeping.await {
            tracing::warn!(error = %e, "the housekeeping task failed");
        }
        close_store.await;
        tracing::info!("stride stopped");
        served
    }
}

/// Work that runs once the configured database is open and migrated, whatever its backend:
/// serving, `stride migrate` and the operator's commands all implement it, so [`with_store`]
/// is the one place the backend is chosen.
pub(crate) trait OnStore {
    type Output;
    async fn run<S: Store>(self, store: S) -> anyhow::Result<Self::Output>;
}

/// The one place the backend is chosen (from the database URL): creates the data directory,
/// opens and migrates the store, and hands it to `task`; everything after is generic over it.
pub(crate) async fn with_store<T: OnStore>(config: &Config, task: T) -> anyhow::Result<T::Output> {
    let url = config.database_url();
    match Backend::from_url(&url) {
        Some(Backend::Sqlite) => open_then::<SqliteStore, T>(config, task).await,
        Some(Backend::Postgres) => open_then::<PgStore, T>(config, task).await,
        None => anyhow::bail!("STRIDE_DATABASE_URL must start with sqlite:// or postgres:// (got {:?})", redact(&url)),
    }
}

async fn open_then<S: Store, T: OnStore>(config: &Config, task: T) -> anyhow::Result<T::Output> {
    let backend = S::BACKEND.name();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create data directory {}", config.data_dir.display()))?;
    let store = S::connect(&store_config(config)).await.with_context(|| format!("open the {backend} database"))?;
    store.migrate().await.with_context(|| format!("migrate the {backend} database"))?;
    // Boxed: serving's future nests every layer of the application, and unboxed it is deeper
    // than the compiler's layout computation allows for the tests that build it.
    Box::pin(task.run(store)).await
}

/// Serving (or, for `stride migrate`, only the migrations [`with_store`] applied).
struct Launch {
    config: Config,
    clock: Arc<dyn Clock>,
    purpose: Purpose,
}

async fn launch(config: Config, clock: Arc<dyn Clock>, purpose: Purpose) -> anyhow::Result<Option<Application>> {
    with_store(&config.clone(), Launch { config, clock, purpose }).await
}

impl OnStore for Launch {
    type Output = Option<Application>;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<Option<Application>> {
        let Self { config, clock, purpose } = self;
        if purpose == Purpose::Migrate {
            store.close().await;
            tracing::info!(backend = S::BACKEND.name(), "migrations applied");
            return Ok(None);
        }
        serve_on(store, config, clock).await.map(Some)
    }
}

/// The CSRF tokens' key: from `STRIDE_SECRET_KEY`, else the one the database keeps for every
/// replica (made by the first to start).
async fn csrf_key<S: Store>(config: &Config, stride: &Stride<S>) -> anyhow::Result<[u8; 32]> {
    let secret = match &config.secret_key {
        Some(secret) => secret.clone(),
        None => {
            let deadline = stride_services::Deadline::after(config.db_timeout());
            stride.auth.server_secret(deadline, "csrf").await.context("read the CSRF key from the database")?
        }
    };
    Ok(stride_services::derive_key("csrf", &secret))
}

async fn serve_on<S: Store>(store: S, config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
    let backend = S::BACKEND.name();
    let blobs = blob_store(&config).await?;
    let stride =
        Stride::new(store.clone(), clock.clone(), blobs, config.settings()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let photos = stride.photos.clone();
    // Efforts older than this version (or missing): rebuilt in the background, once.
    if stride.records.enqueue_rebuild_if_stale(stride_services::Deadline::after(config.db_timeout())).await? {
        tracing::info!("best efforts are older than this version: a records.rebuild job is queued");
    }
    let purge_every = Duration::from_secs(config.purge_interval_secs.max(1));
    let (job_kinds, job_store, job_clock) = (kinds(&stride), store.clone(), clock.clone());
    let runner = stride_services::jobs::RunnerConfig { grace: config.shutdown_grace(), ..Default::default() };
    let housekeeping: Housekeeping = Box::new(move |stop| {
        Box::pin(background(job_store, job_clock, job_kinds, periodic(purge_every), runner, stop))
    });
    let http = HttpConfig {
        request_timeout: config.request_timeout(),
        json_body_limit: config.json_body_limit,
        trusted_proxy: config.trusted_proxy,
        upload_timeout: config.upload_timeout(),
        uploads: config.uploads(),
        cookies: stride_http::CookieConfig {
            secure: config.cookies_secure(),
            session_max_age: Duration::from_secs(config.session_ttl_hours * 3600),
            csrf_key: csrf_key(&config, &stride).await?,
        },
    };
    let in_flight = InFlight::default();
    let recorder = install_metrics_recorder();
    // Bound before the API's listener, so a bad metrics address stops the start with its own
    // error instead of a half-started server.
    let metrics = match config.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen for metrics on {addr} (STRIDE_METRICS_LISTEN)"))?;
            tracing::info!(addr = %listener.local_addr()?, "metrics are served on their own listener");
            Some((listener, stride_http::metrics_router(stride.clone(), recorder.clone())))
        }
        None => None,
    };
    let router = stride_http::router(stride, &http, recorder, in_flight.clone());

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, backend, "stride is ready");
    // Uploads abandoned by a shutdown clean up after themselves before the pools close.
    let close_store = Box::pin(async move {
        photos.quiesce().await;
        store.close().await
    });
    Ok(Application {
        listener,
        router,
        metrics,
        limits: ConnectionLimits {
            max_connections: config.max_connections,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
        },
        close_store,
        housekeeping,
        in_flight,
        shutdown_grace: config.shutdown_grace(),
    })
}

/// The photo store: a folder under the data dir, or an S3 bucket when `STRIDE_S3_BUCKET` is set.
pub(crate) async fn blob_store(config: &Config) -> anyhow::Result<SharedBlobStore> {
    let Some(bucket) = &config.s3_bucket else {
        let root = config.data_dir.join("blobs");
        let store =
            LocalBlobStore::open(&root).await.with_context(|| format!("open the blob folder {}", root.display()))?;
        return Ok(Arc::new(store));
    };
    #[cfg(feature = "s3")]
    {
        let store = stride_repository::S3BlobStore::new(stride_repository::S3Config {
            bucket: bucket.clone(),
            endpoint: config.s3_endpoint.clone(),
            region: config.s3_region.clone(),
            path_style: config.s3_path_style,
            static_credentials: config.s3_access_key_id.clone().zip(config.s3_secret_access_key.clone()),
        });
        store
            .check(stride_services::Deadline::after(Duration::from_millis(config.s3_timeout_ms.max(1_000))))
            .await
            .with_context(|| format!("reach the S3 bucket {bucket:?}"))?;
        tracing::info!(bucket, endpoint = ?config.s3_endpoint, "photos are stored in S3");
        Ok(Arc::new(store))
    }
    #[cfg(not(feature = "s3"))]
    anyhow::bail!("STRIDE_S3_BUCKET={bucket:?} is set, but this stride was built without the `s3` feature")
}

pub(crate) fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        max_connections: config.db_max_connections,
        statement_timeout: config.db_timeout(),
        ..StoreConfig::new(config.database_url())
    }
}

/// `stride migrate`: applies pending migrations and exits.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    launch(config, Arc::new(SystemClock), Purpose::Migrate).await.map(drop)
}
