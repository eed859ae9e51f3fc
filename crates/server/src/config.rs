//! Configuration: defaults, then an optional TOML file, then `STRIDE_*` environment variables
//! (each layer overrides the one before). The names are part of the operator contract.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use stride_domain::RateLimit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `Debug` redacts the passwords the database and Redis URLs may carry (see below).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `STRIDE_LISTEN`: address to serve on.
    pub listen: SocketAddr,
    /// `STRIDE_DATA_DIR`: where the embedded database (and later blobs) live.
    pub data_dir: PathBuf,
    /// `STRIDE_DATABASE_URL`: `sqlite://…` or `postgres://…`; default a SQLite file in the data dir.
    pub database_url: Option<String>,
    /// `STRIDE_LOG`: a tracing filter such as `info,stride=debug`.
    pub log: String,
    /// `STRIDE_LOG_FORMAT`: `pretty` or `json`.
    pub log_format: LogFormat,
    /// `STRIDE_REQUEST_TIMEOUT_MS`: the deadline of every request (504 past it).
    pub request_timeout_ms: u64,
    /// `STRIDE_DB_TIMEOUT_MS`: the most any one unit of database work may take.
    pub db_timeout_ms: u64,
    /// `STRIDE_DB_MAX_CONNECTIONS`: size of the database (reader) pool.
    pub db_max_connections: u32,
    /// `STRIDE_SHUTDOWN_GRACE_MS`: how long in-flight requests may run after a shutdown signal.
    pub shutdown_grace_ms: u64,
    /// `STRIDE_JSON_BODY_LIMIT`: the largest accepted JSON body, in bytes (413 past it).
    pub json_body_limit: usize,
    /// `STRIDE_SESSION_TTL_HOURS`: lifetime of a bearer token.
    pub session_ttl_hours: u64,
    /// `STRIDE_STATS_CACHE_TTL_SECS`: how long computed statistics are reused at most.
    pub stats_cache_ttl_secs: u64,
    /// `STRIDE_STATS_CACHE_CAPACITY`: how many computed statistics the in-process cache holds.
    pub stats_cache_capacity: u64,
    /// `STRIDE_REDIS_URL`: the optional shared cache tier, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: Option<String>,
    /// `STRIDE_REDIS_TIMEOUT_MS`: past this, a Redis call gives way to the database.
    pub redis_timeout_ms: u64,
    /// `STRIDE_TRUSTED_PROXY`: the one reverse proxy whose `X-Forwarded-For` names the client.
    pub trusted_proxy: Option<IpAddr>,
    /// `STRIDE_HASH_CONCURRENCY`: password hashes at once (default: the cores); 4× as many may wait.
    pub hash_concurrency: Option<usize>,
    /// `STRIDE_HASH_WAIT_MS`: the longest a login or registration waits for a hashing slot (then 503).
    pub hash_wait_ms: u64,
    /// `STRIDE_REGISTRATIONS_PER_HOUR`: registrations one client address may attempt per hour.
    pub registrations_per_hour: u32,
    /// `STRIDE_LOGINS_PER_MINUTE`: login attempts one client address may make per minute.
    pub logins_per_minute: u32,
    /// `STRIDE_LOOKUPS_PER_MINUTE`: profile lookups by username one user may make per minute.
    pub lookups_per_minute: u32,
    /// `STRIDE_METRICS_LISTEN`: serve `/metrics` on this address instead of the API's.
    pub metrics_listen: Option<SocketAddr>,
    /// `STRIDE_PURGE_INTERVAL_SECS`: how often expired sessions and idempotency keys are deleted.
    pub purge_interval_secs: u64,
    /// `STRIDE_HEADER_READ_TIMEOUT_MS`: a request head must arrive within this.
    pub header_read_timeout_ms: u64,
    /// `STRIDE_IDLE_TIMEOUT_MS`: a keep-alive connection with no request for this long is closed.
    pub idle_timeout_ms: u64,
    /// `STRIDE_MAX_CONNECTIONS`: open connections at most; more wait in the accept backlog.
    pub max_connections: usize,
    /// `STRIDE_UPLOAD_TIMEOUT_MS`: the deadline of a photo upload, instead of the request timeout.
    pub upload_timeout_ms: u64,
    /// `STRIDE_UPLOAD_STALL_TIMEOUT_MS`: an upload body that sends nothing for this long is cut off.
    pub upload_stall_timeout_ms: u64,
    /// `STRIDE_UPLOAD_MAX_REQUEST_BYTES`: the largest upload request (413 past it).
    pub upload_max_request_bytes: u64,
    /// `STRIDE_UPLOAD_MAX_FILE_BYTES`: the largest file in an upload (413 past it).
    pub upload_max_file_bytes: u64,
    /// `STRIDE_UPLOAD_MEMORY_BYTES`: upload bodies all requests together may hold (503 past it).
    pub upload_memory_bytes: u64,
    /// `STRIDE_DECODE_MEMORY_BYTES`: decoded pixels all photos together may hold.
    pub decode_memory_bytes: u64,
    /// `STRIDE_USER_STORAGE_BYTES`: the blob bytes one user's photos may take (413 past it).
    pub user_storage_bytes: u64,
    /// `STRIDE_PHOTO_CONCURRENCY`: files of one upload processed at once.
    pub photo_concurrency: usize,
    /// `STRIDE_IMPORT_MAX_ARCHIVE_BYTES`: the largest zip an import takes, as sent (413 past it).
    pub import_max_archive_bytes: u64,
    /// `STRIDE_IMPORT_WORKERS`: items each stage of an archive's pipeline takes at once
    /// (0: one per core, plus one).
    pub import_workers: usize,
    /// `STRIDE_S3_BUCKET`: store photos in this S3 bucket instead of `<data dir>/blobs`.
    pub s3_bucket: Option<String>,
    /// `STRIDE_S3_ENDPOINT`: an S3-compatible endpoint (MinIO, s3s, R2…); default AWS.
    pub s3_endpoint: Option<String>,
    /// `STRIDE_S3_REGION`: default from the AWS chain, else `us-east-1`.
    pub s3_region: Option<String>,
    /// `STRIDE_S3_PATH_STYLE`: address the bucket in the path (most self-hosted S3 servers).
    pub s3_path_style: bool,
    /// `STRIDE_S3_ACCESS_KEY_ID` and `STRIDE_S3_SECRET_ACCESS_KEY`: explicit keys; unset, the
    /// standard AWS credential chain is used (environment, profile, instance role).
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    /// `STRIDE_S3_TIMEOUT_MS`: each storage call's own deadline; transient failures are retried within the request's.
    pub s3_timeout_ms: u64,
    /// `STRIDE_S3_PRESIGN_SECS`: when > 0 and on S3, display and thumbnail GETs answer 302 to a URL presigned for this long (at most 300 s).
    pub s3_presign_secs: u64,
    /// `STRIDE_MAX_FRIENDS`: friends per user (409 `limit_reached` past it).
    pub max_friends: u64,
    /// `STRIDE_MAX_PENDING_FRIEND_REQUESTS`: pending outgoing friend requests per user.
    pub max_pending_friend_requests: u64,
    /// `STRIDE_FRIEND_REQUESTS_PER_DAY`: friend requests a user may send in 24 hours (429 past it).
    pub friend_requests_per_day: u64,
    /// `STRIDE_FEED_CHUNK_SIZE`: friends per feed chunk query (1–400).
    pub feed_chunk_size: usize,
    /// `STRIDE_FEED_CONCURRENCY`: feed chunk queries in flight for one page; default three quarters of the pool.
    pub feed_concurrency: Option<usize>,
    /// `STRIDE_COOKIE_SECURE`: `Secure` (`__Host-`) cookies and HSTS. Unset: on, except on a
    /// loopback listener without `STRIDE_TRUSTED_PROXY` (a developer's laptop).
    pub cookie_secure: Option<bool>,
    /// `STRIDE_SECRET_KEY`: the key the CSRF tokens are made with; unset, the first replica to
    /// start makes one and keeps it in the database.
    pub secret_key: Option<String>,
    /// `STRIDE_WEATHER_URL`: an Open-Meteo-compatible archive API; unset, the weather feature is off.
    pub weather_url: Option<String>,
    /// `STRIDE_WEATHER_TIMEOUT_MS`: each call to the weather API's own timeout.
    pub weather_timeout_ms: u64,
    /// `STRIDE_WEATHER_MAX_ATTEMPTS`: attempts of one lookup before the weather is `unavailable`.
    pub weather_max_attempts: u32,
    /// `STRIDE_WEATHER_RETRY_MS`: the wait before a lookup's first retry (doubling, jittered, up to an hour).
    pub weather_retry_ms: u64,
    /// `STRIDE_WEATHER_RATE_PER_MIN`: weather API calls per minute from one process; lookups wait past it.
    pub weather_rate_per_min: u32,
    /// `STRIDE_START_POINTS_PER_HOUR`: start points one user may set or move by hand per hour (429 past it).
    pub start_points_per_hour: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            log: "info,sqlx=warn".into(),
            log_format: LogFormat::Pretty,
            request_timeout_ms: 10_000,
            db_timeout_ms: 5_000,
            db_max_connections: 10,
            shutdown_grace_ms: 15_000,
            json_body_limit: 1024 * 1024,
            session_ttl_hours: 24 * 30,
            stats_cache_ttl_secs: 300,
            stats_cache_capacity: 100_000,
            redis_url: None,
            redis_timeout_ms: 100,
            trusted_proxy: None,
            hash_concurrency: None,
            hash_wait_ms: 1_000,
            registrations_per_hour: 20,
            logins_per_minute: 10,
            lookups_per_minute: 60,
            metrics_listen: None,
            purge_interval_secs: 3_600,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 4_096,
            upload_timeout_ms: 120_000,
            upload_stall_timeout_ms: 30_000,
            upload_max_request_bytes: 100 * 1024 * 1024,
            upload_max_file_bytes: 25 * 1024 * 1024,
            upload_memory_bytes: 256 << 20,
            decode_memory_bytes: 512 << 20,
            user_storage_bytes: 5 << 30,
            photo_concurrency: 5,
            import_max_archive_bytes: 1 << 30,
            import_workers: 0,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: None,
            s3_path_style: false,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_timeout_ms: 10_000,
            s3_presign_secs: 0,
            max_friends: 5_000,
            max_pending_friend_requests: 500,
            friend_requests_per_day: 100,
            feed_chunk_size: 100,
            feed_concurrency: None,
            cookie_secure: None,
            secret_key: None,
            weather_url: None,
            weather_timeout_ms: 5_000,
            weather_max_attempts: 5,
            weather_retry_ms: 30_000,
            weather_rate_per_min: 60,
            start_points_per_hour: 30,
        }
    }
}

/// Every setting's key; `STRIDE_` plus its upper-case form is its environment variable.
const SETTINGS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "log",
    "log_format",
    "request_timeout_ms",
    "db_timeout_ms",
    "db_max_connections",
    "shutdown_grace_ms",
    "json_body_limit",
    "session_ttl_hours",
    "stats_cache_ttl_secs",
    "stats_cache_capacity",
    "redis_url",
    "redis_timeout_ms",
    "trusted_proxy",
    "hash_concurrency",
    "hash_wait_ms",
    "registrations_per_hour",
    "logins_per_minute",
    "lookups_per_minute",
    "metrics_listen",
    "purge_interval_secs",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "max_connections",
    "upload_timeout_ms",
    "upload_stall_timeout_ms",
    "upload_max_request_bytes",
    "upload_max_file_bytes",
    "upload_memory_bytes",
    "decode_memory_bytes",
    "user_storage_bytes",
    "photo_concurrency",
    "import_max_archive_bytes",
    "import_workers",
    "s3_bucket",
    "s3_endpoint",
    "s3_region",
    "s3_path_style",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_timeout_ms",
    "s3_presign_secs",
    "max_friends",
    "max_pending_friend_requests",
    "friend_requests_per_day",
    "feed_chunk_size",
    "feed_concurrency",
    "cookie_secure",
    "secret_key",
    "weather_url",
    "weather_timeout_ms",
    "weather_max_attempts",
    "weather_retry_ms",
    "weather_rate_per_min",
    "start_points_per_hour",
];

impl Config {
    /// Defaults ← `file` (if given) ← `STRIDE_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(file.exists(), "config file {} does not exist", file.display());
            figment = figment.merge(Toml::file(file));
        }
        // Only known settings are read from the environment: other STRIDE_* variables (the
        // config file's name, the test suite's database URL) are not settings of this server.
        figment = figment.merge(Env::prefixed("STRIDE_").only(SETTINGS));
        figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("stride.db").display()))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn db_timeout(&self) -> Duration {
        Duration::from_millis(self.db_timeout_ms)
    }

    pub fn stats(&self) -> stride_services::StatsConfig {
        stride_services::StatsConfig {
            cache_ttl: Duration::from_secs(self.stats_cache_ttl_secs),
            cache_capacity: self.stats_cache_capacity,
            redis_url: self.redis_url.clone(),
            redis_timeout: Duration::from_millis(self.redis_timeout_ms),
            ..stride_services::StatsConfig::for_pool_size(self.db_max_connections)
        }
    }

    pub fn auth(&self) -> stride_services::AuthConfig {
        let hashing = stride_services::HashingConfig {
            max_wait: Duration::from_millis(self.hash_wait_ms),
            ..self.hash_concurrency.map_or_else(Default::default, stride_services::HashingConfig::with_slots)
        };
        stride_services::AuthConfig { session_ttl: Duration::from_secs(self.session_ttl_hours * 3600), hashing }
    }

    /// Every use case's settings.
    pub fn settings(&self) -> anyhow::Result<stride_services::Settings> {
        Ok(stride_services::Settings {
            auth: self.auth(),
            stats: self.stats(),
            photos: self.photos(),
            social: stride_services::SocialConfig {
                max_friends: self.max_friends,
                max_pending_outgoing: self.max_pending_friend_requests,
                requests_per_day: self.friend_requests_per_day,
            },
            feed: self.feed(),
            weather: self.weather()?,
            limits: stride_services::LimitsConfig {
                logins_per_address: RateLimit::per_minute(self.logins_per_minute),
                registrations_per_address: RateLimit::per_hour(self.registrations_per_hour),
                lookups_per_user: RateLimit::per_minute(self.lookups_per_minute),
                start_points_per_user: RateLimit::per_hour(self.start_points_per_hour),
                ..Default::default()
            },
            imports: self.imports(),
        })
    }

    pub fn imports(&self) -> stride_services::ImportConfig {
        let defaults = stride_services::ImportConfig::default();
        stride_services::ImportConfig {
            max_archive_bytes: self.import_max_archive_bytes,
            workers: if self.import_workers == 0 { defaults.workers } else { self.import_workers },
            // Beside the blobs, on disk: an archive is never spooled into a memory-backed /tmp.
            spool_dir: self.data_dir.join("spool"),
            ..defaults
        }
    }

    pub fn weather(&self) -> anyhow::Result<stride_services::WeatherConfig> {
        let call_timeout = Duration::from_millis(self.weather_timeout_ms.max(1));
        let api = match &self.weather_url {
            None => None,
            Some(url) => {
                let api = stride_services::OpenMeteo::new(url, call_timeout)
                    .map_err(|e| anyhow::anyhow!("STRIDE_WEATHER_URL: {e}"))?;
                Some(std::sync::Arc::new(api) as std::sync::Arc<dyn stride_services::WeatherApi>)
            }
        };
        Ok(stride_services::WeatherConfig {
            api,
            max_attempts: self.weather_max_attempts.max(1),
            first_retry: Duration::from_millis(self.weather_retry_ms.max(1)),
            calls_per_minute: self.weather_rate_per_min.max(1),
            // The call, cache reads and write, with room; a short timeout keeps the lease short.
            timeout: call_timeout * 2 + Duration::from_secs(2),
            ..Default::default()
        })
    }

    pub fn feed(&self) -> stride_services::FeedConfig {
        let sized = stride_services::FeedConfig::for_pool_size(self.db_max_connections);
        stride_services::FeedConfig {
            chunk_size: self.feed_chunk_size,
            concurrency: self.feed_concurrency.unwrap_or(sized.concurrency),
            ..sized
        }
    }

    /// `Secure` cookies and HSTS, unless overridden, or on a loopback listener no proxy serves.
    pub fn cookies_secure(&self) -> bool {
        self.cookie_secure.unwrap_or(!(self.listen.ip().is_loopback() && self.trusted_proxy.is_none()))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn upload_timeout(&self) -> Duration {
        Duration::from_millis(self.upload_timeout_ms)
    }

    pub fn uploads(&self) -> stride_http::UploadLimits {
        stride_http::UploadLimits {
            max_request_bytes: self.upload_max_request_bytes,
            max_file_bytes: self.upload_max_file_bytes,
            max_files: 10,
            stall_timeout: Duration::from_millis(self.upload_stall_timeout_ms.max(1)),
        }
    }

    pub fn photos(&self) -> stride_services::PhotoConfig {
        let defaults = stride_services::PhotoConfig::default();
        stride_services::PhotoConfig {
            per_request: self.photo_concurrency.max(1),
            max_file_bytes: self.upload_max_file_bytes,
            storage_timeout: Duration::from_millis(self.s3_timeout_ms.max(1)),
            // At most 5 minutes: an unrevocable URL must not long outlive a block or a visibility change.
            presign_ttl: (self.s3_presign_secs > 0).then(|| Duration::from_secs(self.s3_presign_secs.min(300))),
            // Longer than any upload can run, so gc never takes the blobs of one in flight.
            gc_grace: defaults.gc_grace.max(self.upload_timeout() * 2),
            upload_memory_bytes: self.upload_memory_bytes,
            decode_memory_bytes: self.decode_memory_bytes,
            user_storage_bytes: self.user_storage_bytes,
            ..defaults
        }
    }
}

#[cfg(test)]
// figment's Jail API returns its (large) error type from every closure; that is its design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn files_override_defaults_and_environment_overrides_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("stride.toml", "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n")?;
            jail.set_env("STRIDE_LOG", "warn");
            jail.set_env("STRIDE_DATABASE_URL", "postgres://db/stride");
            let config = Config::load(Some(Path::new("stride.toml"))).expect("valid");
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.log, "warn");
            assert_eq!(config.database_url(), "postgres://db/stride");
            Ok(())
        });
    }

    #[test]
    fn the_default_database_is_a_sqlite_file_in_the_data_dir() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STRIDE_DATA_DIR", "/var/lib/stride");
            let config = Config::load(None).expect("valid");
            assert_eq!(config.database_url(), "sqlite:///var/lib/stride/stride.db");
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn safe_defaults_secure_cookies_off_loopback_and_a_presign_lifetime_of_at_most_five_minutes() {
        let on = |listen: &str, proxy: Option<&str>, secure: Option<bool>| Config {
            listen: listen.parse().unwrap(),
            trusted_proxy: proxy.map(|p| p.parse().unwrap()),
            cookie_secure: secure,
            ..Config::default()
        };
        assert!(!on("127.0.0.1:8080", None, None).cookies_secure(), "a developer's laptop");
        assert!(!on("[::1]:8080", None, None).cookies_secure());
        assert!(on("127.0.0.1:8080", Some("127.0.0.1"), None).cookies_secure(), "behind a proxy");
        assert!(on("0.0.0.0:8080", None, None).cookies_secure());
        assert!(!on("0.0.0.0:8080", None, Some(false)).cookies_secure(), "overridden");
        assert!(on("127.0.0.1:8080", None, Some(true)).cookies_secure(), "overridden");
        let presign = |secs| Config { s3_presign_secs: secs, ..Config::default() }.photos().presign_ttl;
        assert_eq!(presign(0), None);
        assert_eq!(presign(1), Some(Duration::from_secs(1)));
        assert_eq!(presign(86_400), Some(Duration::from_secs(300)));
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let config = Config {
            database_url: Some("postgres://stride:db-secret@db/stride".into()),
            redis_url: Some("redis://:cache-secret@cache:6379".into()),
            ..Config::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("db-secret") && !debug.contains("cache-secret"), "{debug}");
        assert!(debug.contains("db/stride") && debug.contains("cache:6379"), "{debug}");
    }

    #[test]
    fn every_setting_can_come_from_the_environment() {
        let mut fields: Vec<String> = match figment::value::Value::serialize(Config::default()) {
            Ok(figment::value::Value::Dict(_, dict)) => dict.keys().cloned().collect(),
            other => panic!("Config serialises to a map, got {other:?}"),
        };
        let mut settings: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
        fields.sort();
        settings.sort();
        assert_eq!(fields, settings, "SETTINGS must list every Config field");
    }

    #[test]
    fn unrelated_stride_variables_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STRIDE_TEST_DATABASE_URL", "postgres://elsewhere/x");
            jail.set_env("STRIDE_CONFIG", "stride.toml");
            let config = Config::load(None).expect("valid");
            assert_eq!(config.database_url, None);
            Ok(())
        });
    }

    #[test]
    fn unknown_or_malformed_settings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STRIDE_LISTEN", "not an address");
            assert!(Config::load(None).is_err());
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("stride.toml", "lisen = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load(Some(Path::new("stride.toml"))).is_err());
            Ok(())
        });
    }
}
