//! Abuse limits that every replica shares: logins per client address, failed logins per
//! (username, address) and per username, registrations per address, username lookups per user.
//!
//! Each limit is a token bucket ([`RateLimit`]) kept in the database, taken by one atomic
//! upsert (`LimitRepo::take`), so a limit of five means five across all replicas, and a burst of
//! concurrent attempts cannot all pass before any is counted. A request's buckets are taken in
//! one unit of work, in order, stopping at the first refusal, so a refused attempt spends no
//! token of the buckets after it (nor any hashing).
//!
//! With `STRIDE_REDIS_URL` set, the buckets live in Redis instead (one atomic script per
//! attempt, the same rule), under keys prefixed by this installation's id (made once and kept
//! in the database, so replicas share it and nothing else on that Redis collides with them);
//! when Redis is slow or down, the database takes over for that request.
//!
//! Client addresses are keyed as the network a client controls: an IPv4 address whole, an IPv6
//! address by its /64 (one subscriber's prefix; keying the full address would give every
//! client 2^64 fresh buckets).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use stride_cache::RedisTier;
use stride_concurrency::Deadline;
use stride_domain::{Admission, RateLimit, UserId, Username};
use stride_repository::{LimitRepo, Store};
use tokio::sync::OnceCell;

use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult};

const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);

/// The shared limits; each is an operator setting (README, "Limits").
#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Login attempts from one client address, checked before a hashing slot is taken.
    pub logins_per_address: RateLimit,
    /// Login attempts for one username from one address; a success refills it. The owner at
    /// another address is not affected.
    pub logins_per_username_and_address: RateLimit,
    /// Login attempts for one username from everywhere: a ceiling that slows a distributed
    /// guesser to its refill rate without locking the account.
    pub logins_per_username: RateLimit,
    /// Registrations from one client address.
    pub registrations_per_address: RateLimit,
    /// Profile lookups by username one signed-in user may make.
    pub lookups_per_user: RateLimit,
    /// Start points one user may set or move by hand (each may cost a weather lookup);
    /// activities an import creates are not counted.
    pub start_points_per_user: RateLimit,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            logins_per_address: RateLimit::per_minute(10),
            logins_per_username_and_address: RateLimit::new(5, QUARTER_HOUR),
            logins_per_username: RateLimit::new(50, QUARTER_HOUR),
            registrations_per_address: RateLimit::per_hour(20),
            lookups_per_user: RateLimit::per_minute(60),
            start_points_per_user: RateLimit::per_hour(30),
        }
    }
}

/// The network a client address stands for: IPv4 whole, IPv6 by its /64, an IPv4-mapped IPv6
/// address as the IPv4 address it is.
pub fn client_network(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// A bucket to take from: its key and its rule.
pub(crate) struct Bucket {
    key: String,
    limit: RateLimit,
}

#[derive(Clone)]
pub(crate) struct Limits<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: LimitsConfig,
    redis: Option<Arc<RedisTier>>,
    /// `stride:{installation}:limit:`, read once from the database.
    redis_prefix: Arc<OnceCell<String>>,
}

impl<S: Store> Limits<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>, config: LimitsConfig) -> Self {
        Self { store, clock, config, redis: None, redis_prefix: Arc::default() }
    }

    /// The same limits kept in Redis first.
    pub(crate) fn with_redis(self, redis: Arc<RedisTier>) -> Self {
        Self { redis: Some(redis), ..self }
    }

    /// Takes the buckets in Redis; `None` when there is no Redis or it failed (then the
    /// database decides, for this whole request).
    async fn admit_in_redis(&self, deadline: Deadline, buckets: &[Bucket]) -> ServiceResult<Option<ServiceResult<()>>> {
        let Some(redis) = &self.redis else { return Ok(None) };
        let prefix = self
            .redis_prefix
            .get_or_try_init(|| async {
                let mut uow = self.store.write(deadline).await?;
                let candidate = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
                let outcome = uow.server_key("installation", &candidate).await.map_err(ServiceError::from);
                let id = finish(uow, outcome).await?;
                Ok::<_, ServiceError>(format!("stride:{id}:limit:"))
            })
            .await?;
        let now_us = self.clock.now().timestamp_micros();
        for bucket in buckets {
            let key = format!("{prefix}{}", bucket.key);
            let limit = bucket.limit;
            let Some((tat, refused)) = redis.take_token(&key, now_us, limit.interval_us(), limit.tolerance_us()).await
            else {
                return Ok(None);
            };
            if refused && let Admission::Refused { retry_after } = limit.refusal(tat, now_us) {
                return Ok(Some(Err(ServiceError::Throttled { retry_after })));
            }
        }
        Ok(Some(Ok(())))
    }

    pub(crate) fn login_from(&self, client: IpAddr) -> Bucket {
        Bucket { key: format!("login-from:{}", client_network(client)), limit: self.config.logins_per_address }
    }

    pub(crate) fn login_as_from(&self, username: &Username, client: IpAddr) -> Bucket {
        let key = format!("login-as-from:{username}:{}", client_network(client));
        Bucket { key, limit: self.config.logins_per_username_and_address }
    }

    pub(crate) fn login_as(&self, username: &Username) -> Bucket {
        Bucket { key: format!("login-as:{username}"), limit: self.config.logins_per_username }
    }

    pub(crate) fn register_from(&self, client: IpAddr) -> Bucket {
        Bucket {
            key: format!("register-from:{}", client_network(client)),
            limit: self.config.registrations_per_address,
        }
    }

    pub(crate) fn lookups_by(&self, user: UserId) -> Bucket {
        Bucket { key: format!("lookup-by:{user}"), limit: self.config.lookups_per_user }
    }

    pub(crate) fn start_points_by(&self, user: UserId) -> Bucket {
        Bucket { key: format!("start-points-by:{user}"), limit: self.config.start_points_per_user }
    }

    /// Takes a token from each bucket in order; `Throttled` at the first that has none (the
    /// buckets after it are not touched).
    pub(crate) async fn admit(&self, deadline: Deadline, buckets: &[Bucket]) -> ServiceResult<()> {
        if let Some(verdict) = self.admit_in_redis(deadline, buckets).await? {
            return verdict;
        }
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            for bucket in buckets {
                if let Admission::Refused { retry_after } = uow.take(&bucket.key, bucket.limit, now).await? {
                    return Ok(Err(ServiceError::Throttled { retry_after }));
                }
            }
            Ok(Ok(()))
        }
        .await;
        finish(uow, outcome).await?
    }

    /// Gives back the token an attempt took from `bucket` (a successful login is not one of the
    /// failures the username's ceiling counts).
    pub(crate) async fn give_back(&self, deadline: Deadline, bucket: &Bucket) -> ServiceResult<()> {
        if let (Some(redis), Some(prefix)) = (&self.redis, self.redis_prefix.get()) {
            redis.give_back_token(&format!("{prefix}{}", bucket.key), bucket.limit.interval_us()).await;
        }
        let mut uow = self.store.write(deadline).await?;
        let outcome = uow.give_back(&bucket.key, bucket.limit).await.map_err(Into::into);
        finish(uow, outcome).await
    }

    /// Refills a bucket (a successful login forgets the failures before it).
    pub(crate) async fn refill(&self, deadline: Deadline, bucket: &Bucket) -> ServiceResult<()> {
        if let (Some(redis), Some(prefix)) = (&self.redis, self.redis_prefix.get()) {
            redis.delete(&format!("{prefix}{}", bucket.key)).await;
        }
        let mut uow = self.store.write(deadline).await?;
        let outcome = uow.forget(&bucket.key).await.map_err(Into::into);
        finish(uow, outcome).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let network = |text: &str| client_network(text.parse().unwrap());
        assert_eq!(network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(network("2001:db8:1:2:ffff:1:2:3"), network("2001:db8:1:2::9"));
        assert_ne!(network("2001:db8:1:3::1"), network("2001:db8:1:2::1"));
        assert_eq!(network("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(network("192.0.2.7"), "192.0.2.7");
    }
}
