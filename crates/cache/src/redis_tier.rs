//! The optional shared cache tier: byte values in Redis, read through with short timeouts.
//!
//! It degrades, never fails: a slow or dead Redis makes `get` answer "miss" and `set` do
//! nothing, so callers fall back to the database and clients see no error. Every such event
//! is counted (`cache_remote_errors_total` in /metrics) and logged as a warning at most once
//! per [`WARN_EVERY`], so an outage cannot flood the logs. Connections come from our own
//! [`Pool`]; one that fails a command is discarded, and a fresh one is made on the next use —
//! which is how the tier recovers by itself when Redis comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use stride_concurrency::sync::Mutex;
use tokio::time::Instant;

use crate::{Manager, Pool, PoolConfig};

/// The quietest an outage can be: one warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(30);

struct Connections {
    client: redis::Client,
    timeout: Duration,
}

impl Manager for Connections {
    type Resource = redis::aio::MultiplexedConnection;
    type Error = String;

    async fn create(&self) -> Result<Self::Resource, String> {
        match tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out connecting to Redis".into()),
        }
    }

    async fn recycle(&self, connection: &mut Self::Resource) -> bool {
        let ping = redis::cmd("PING");
        matches!(tokio::time::timeout(self.timeout, ping.query_async::<String>(connection)).await, Ok(Ok(_)))
    }
}

pub struct RedisTier {
    /// Owns the connections; a connection that failed a command is discarded, not returned.
    pool: Pool<Connections>,
    timeout: Duration,
    /// Failures since start, for the metric. An atomic: every caller only adds.
    errors: AtomicU64,
    /// When the last warning was logged, so an outage logs once per `WARN_EVERY`. A sync
    /// lock (the shim's, so loom and TSan see it) because it is held only for a comparison
    /// and an assignment, never across an `.await`.
    last_warning: Mutex<Option<Instant>>,
}

impl RedisTier {
    /// `timeout` bounds every Redis interaction (connect, checkout, command).
    pub fn new(url: &str, max_connections: usize, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let config = PoolConfig {
            acquire_timeout: timeout,
            idle_timeout: Some(Duration::from_secs(60)),
            ..PoolConfig::new(max_connections)
        };
        Ok(Self {
            pool: Pool::new(Connections { client, timeout }, config),
            timeout,
            errors: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    /// The value under `key`; `None` on a miss *or* on any failure.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let result = self
            .command(|mut connection, key| async move { connection.get::<_, Option<Vec<u8>>>(key).await }, key)
            .await;
        result.flatten()
    }

    /// Stores `value` for `ttl`, best effort.
    pub async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let seconds = ttl.as_secs().max(1);
        self.command(
            move |mut connection, key| async move { connection.set_ex::<_, _, ()>(key, value, seconds).await },
            key,
        )
        .await;
    }

    /// Takes a token from the GCRA bucket under `key` (see `stride_domain::RateLimit`) in one
    /// atomic script: the stored value is the bucket's theoretical arrival time in µs, kept
    /// until the bucket is full again. Returns the TAT after the attempt and whether it was
    /// refused; `None` on any failure (the caller falls back to the database).
    pub async fn take_token(&self, key: &str, now_us: i64, interval_us: i64, tolerance_us: i64) -> Option<(i64, bool)> {
        const GCRA: &str = r"
            local now, interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
            local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
            if tat - now > tolerance then return {tat, 1} end
            local next = math.max(tat, now) + interval
            redis.call('SET', KEYS[1], next, 'PX', math.floor((next - now) / 1000) + 1000)
            return {next, 0}";
        self.command(
            move |mut connection, key| async move {
                redis::Script::new(GCRA)
                    .key(key)
                    .arg(now_us)
                    .arg(interval_us)
                    .arg(tolerance_us)
                    .invoke_async::<(i64, i64)>(&mut connection)
                    .await
            },
            key,
        )
        .await
        .map(|(tat, refused)| (tat, refused == 1))
    }

    /// Moves the bucket under `key` back by `interval_us` (a token given back), if it exists;
    /// best effort.
    pub async fn give_back_token(&self, key: &str, interval_us: i64) {
        const GIVE_BACK: &str = r"
            local tat = tonumber(redis.call('GET', KEYS[1]))
            if tat then redis.call('SET', KEYS[1], tat - tonumber(ARGV[1]), 'KEEPTTL') end
            return 0";
        self.command(
            move |mut connection, key| async move {
                redis::Script::new(GIVE_BACK).key(key).arg(interval_us).invoke_async::<i64>(&mut connection).await
            },
            key,
        )
        .await;
    }

    /// Deletes `key`, best effort; whether it was done.
    pub async fn delete(&self, key: &str) -> bool {
        self.command(|mut connection, key| async move { connection.del::<_, ()>(key).await }, key).await.is_some()
    }

    /// How many Redis interactions failed or timed out since start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    async fn command<T, F, Fut>(&self, run: F, key: &str) -> Option<T>
    where
        F: FnOnce(redis::aio::MultiplexedConnection, String) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let pooled = self.pool.acquire().await.map_err(|e| e.to_string())?;
            // A multiplexed connection is a cheap handle: the command runs on a clone so the
            // pooled one can be discarded if the command fails.
            let outcome = tokio::time::timeout(self.timeout, run((*pooled).clone(), key.to_owned())).await;
            match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => {
                    pooled.discard();
                    Err(e.to_string())
                }
                Err(_) => {
                    pooled.discard();
                    Err("Redis command timed out".to_owned())
                }
            }
        };
        match attempt.await {
            Ok(value) => Some(value),
            Err(why) => {
                self.failed(&why);
                None
            }
        }
    }

    fn failed(&self, why: &str) {
        let total = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("cache_remote_errors_total").increment(1);
        let now = Instant::now();
        let should_warn = {
            let mut last = self.last_warning.lock();
            let due = last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        if should_warn {
            tracing::warn!(
                error = why,
                failures_so_far = total,
                "Redis cache tier unavailable; serving from the database"
            );
        }
    }
}
