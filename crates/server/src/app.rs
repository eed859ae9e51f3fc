//! Wiring: configuration in, a bound and ready-to-serve application out.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use stride_http::{HttpConfig, InFlight, install_metrics_recorder};
use stride_repository::{Backend, PgStore, SqliteStore, Store, StoreConfig};
use stride_services::{AuthConfig, Clock, StatsConfig, Stride, SystemClock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;

/// A Stride whose database is migrated and whose listener is bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    stores: Stores,
    in_flight: InFlight,
    shutdown_grace: Duration,
}

/// The backend chosen at start-up. Everything above `server` is generic over it; this enum
/// exists only so the application can close whichever pool it opened.
enum Stores {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Stores {
    async fn close(&self) {
        match self {
            Stores::Sqlite(s) => s.close().await,
            Stores::Postgres(s) => s.close().await,
        }
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`build`](Self::build) with an injected clock, for tests that pin "now".
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let url = config.database_url();
        let backend = backend_of(&url)?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("create data directory {}", config.data_dir.display()))?;
        let store_config = store_config(&config, url);
        let http = HttpConfig { request_timeout: config.request_timeout(), json_body_limit: config.json_body_limit };
        let auth =
            AuthConfig { session_ttl: Duration::from_secs(config.session_ttl_hours * 3600), ..AuthConfig::default() };
        let stats = config.stats();
        let in_flight = InFlight::default();

        let (router, stores) = match backend {
            Backend::Sqlite => {
                let store = SqliteStore::connect(&store_config).await.context("open SQLite database")?;
                store.migrate().await.context("migrate SQLite database")?;
                (wire_store(store.clone(), &clock, (&auth, &stats), &http, &in_flight)?, Stores::Sqlite(store))
            }
            Backend::Postgres => {
                let store = PgStore::connect(&store_config).await.context("connect to PostgreSQL")?;
                store.migrate().await.context("migrate PostgreSQL database")?;
                (wire_store(store.clone(), &clock, (&auth, &stats), &http, &in_flight)?, Stores::Postgres(store))
            }
        };
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("listen on {}", config.listen))?;
        tracing::info!(addr = %listener.local_addr()?, backend = backend.name(), "stride is ready");
        Ok(Self { listener, router, stores, in_flight, shutdown_grace: config.shutdown_grace() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Serves until `shutdown` resolves; then stops accepting connections, lets in-flight
    /// requests finish within the grace period (aborting what is left after it), and closes
    /// the database pools.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self { listener, router, stores, in_flight, shutdown_grace } = self;
        let stop_accepting = CancellationToken::new();
        let serve = axum::serve(listener, router).with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { serve.await });

        let outcome = tokio::select! {
            joined = &mut server => joined.context("server task failed")?.context("server failed"),
            () = shutdown => {
                tracing::info!(in_flight = in_flight.current(), "shutting down: no new connections, draining requests");
                stop_accepting.cancel();
                match tokio::time::timeout(shutdown_grace, &mut server).await {
                    Ok(joined) => joined.context("server task failed")?.context("server failed"),
                    Err(_) => {
                        tracing::warn!(in_flight = in_flight.current(), "grace period over; aborting the remaining requests");
                        server.abort();
                        Ok(())
                    }
                }
            }
        };
        stores.close().await;
        tracing::info!("stride stopped");
        outcome
    }
}

fn wire_store<S: Store>(
    store: S,
    clock: &Arc<dyn Clock>,
    (auth, stats): (&AuthConfig, &StatsConfig),
    http: &HttpConfig,
    in_flight: &InFlight,
) -> anyhow::Result<Router> {
    let stride = Stride::new(store, clock.clone(), auth.clone(), stats.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(stride_http::router(stride, http, install_metrics_recorder(), in_flight.clone()))
}

fn backend_of(url: &str) -> anyhow::Result<Backend> {
    Backend::from_url(url).with_context(|| {
        format!("STRIDE_DATABASE_URL must start with sqlite:// or postgres:// (got {:?})", redact(url))
    })
}

fn store_config(config: &Config, url: String) -> StoreConfig {
    StoreConfig {
        max_connections: config.db_max_connections,
        statement_timeout: config.db_timeout(),
        ..StoreConfig::new(url)
    }
}

/// Hides a password in a URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `stride migrate`: applies pending migrations and exits.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url();
    let backend = backend_of(&url)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store_config = store_config(config, url);
    match backend {
        Backend::Sqlite => {
            let store = SqliteStore::connect(&store_config).await?;
            store.migrate().await?;
            store.close().await;
        }
        Backend::Postgres => {
            let store = PgStore::connect(&store_config).await?;
            store.migrate().await?;
            store.close().await;
        }
    }
    tracing::info!(backend = backend.name(), "migrations applied");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://***@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
