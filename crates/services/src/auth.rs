//! Registration, login, logout and bearer-token authentication.
//!
//! Tokens are 32 random bytes, base64url-encoded, shown to the client once. Only their SHA-256
//! is stored: it is looked up on every request, so it must be fast (argon2 would cost tens of
//! milliseconds per request), and 256 random bits need no key stretching to resist guessing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::TimeDelta;
use sha2::{Digest, Sha256};
use stride_concurrency::Deadline;
use stride_domain::{DisplayName, Password, TimeZone, User, UserId, Username};
use stride_repository::{LimitRepo, NewSession, RepoError, SessionRepo, SessionUser, StatsRepo, Store, UserRepo};
use tokio::sync::OnceCell;

use crate::limits::Limits;
use crate::password::{Hashing, HashingConfig};
use crate::uow::finish;
use crate::{Clock, ServiceError, ServiceResult};

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_ttl: Duration,
    pub hashing: HashingConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { session_ttl: Duration::from_secs(30 * 24 * 3600), hashing: HashingConfig::default() }
    }
}

/// A freshly issued bearer token. Its `Debug` is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A 32-byte key for `purpose` from an operator's or the database's secret of any length, so
/// that one secret never serves two purposes with the same key.
pub fn derive_key(purpose: &str, secret: &str) -> [u8; 32] {
    Sha256::new().chain_update(purpose).chain_update([0]).chain_update(secret).finalize().into()
}

/// What a new user supplies, already parsed at the edge.
#[derive(Debug)]
pub struct Registration {
    pub username: Username,
    pub password: Password,
    pub display_name: Option<DisplayName>,
    pub timezone: Option<TimeZone>,
}

/// A user who just registered or logged in, with the token that proves it from now on.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub token: SessionToken,
}

/// The authenticated user behind a request. Their statistics version rides along because the
/// session lookup reads it in the same statement: a cached `GET /me/stats` then costs no query
/// of its own (see `StatsService::own`).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user: User,
    pub stats_version: i64,
    /// Keys the caller's cached friend list: moved by every change of friendship or block.
    pub social_version: i64,
}

#[derive(Clone)]
pub struct AuthService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    limits: Limits<S>,
    /// Shared by every clone: the bound on concurrent argon2 work is process-wide.
    hashing: Hashing,
    /// Verified against when the username is unknown, so both kinds of failed login cost the
    /// same argon2 work and cannot be told apart by timing. Made once, on first use.
    dummy_hash: Arc<OnceCell<String>>,
}

impl<S: Store> AuthService<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>, config: AuthConfig, limits: Limits<S>) -> Self {
        let hashing = Hashing::new(config.hashing);
        Self { store, clock, config, limits, hashing, dummy_hash: Arc::new(OnceCell::new()) }
    }

    /// Registers from `client` (the caller's address), within that address's hourly limit.
    /// The password is hashed before the username is checked, so a taken name answers no
    /// faster than a free one.
    pub async fn register(
        &self,
        deadline: Deadline,
        registration: Registration,
        client: IpAddr,
    ) -> ServiceResult<SignedIn> {
        self.limits.admit(deadline, &[self.limits.register_from(client)]).await?;
        let Registration { username, password, display_name, timezone } = registration;
        let password_hash = deadline.run(self.hashing.hash(password)).await??;
        let user = User {
            id: UserId::new(),
            display_name: display_name.unwrap_or_else(|| DisplayName::from_username(&username)),
            username,
            timezone: timezone.unwrap_or_default(),
            created_at: self.clock.now(),
        };
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            match uow.insert_user(&user, &password_hash).await {
                Err(RepoError::Conflict { .. }) => {
                    return Err(ServiceError::Conflict {
                        code: "username_taken",
                        message: format!("username {} is already taken", user.username),
                    });
                }
                other => other?,
            }
            self.open_session(&mut uow, user.id).await
        }
        .await;
        let token = finish(uow, outcome).await?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(SignedIn { user, token })
    }

    /// Wrong username and wrong password fail alike (`BadCredentials`), in the same time.
    ///
    /// Before any hashing: the client address's bucket, then (for a string that can be a
    /// username) that username's bucket at this address and its bucket from everywhere. Each
    /// attempt takes its token before the password is verified, so a burst of guesses cannot
    /// all pass the check first; a success refills the (username, address) bucket.
    pub async fn login(
        &self,
        deadline: Deadline,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> ServiceResult<SignedIn> {
        let parsed = Username::parse(username);
        let mut buckets = vec![self.limits.login_from(client)];
        if let Ok(username) = &parsed {
            buckets.push(self.limits.login_as_from(username, client));
            buckets.push(self.limits.login_as(username));
        }
        self.limits.admit(deadline, &buckets).await?;
        // A string that cannot be a username names nobody, and the username format is public:
        // answering at once reveals nothing, and spends no hash.
        let Ok(username) = parsed else {
            tracing::info!("failed login");
            return Err(ServiceError::BadCredentials);
        };
        let credentials = {
            let mut uow = self.store.read(deadline).await?;
            uow.credentials_by_username(&username).await?
        };
        let (user, stored_hash) = match credentials {
            Some(c) => (Some(c.user), c.password_hash),
            None => (None, self.dummy_hash().await?),
        };
        let matches = deadline.run(self.hashing.verify(password.to_owned(), stored_hash)).await??;
        let user = match (user, matches) {
            (Some(user), true) => user,
            _ => {
                tracing::info!("failed login");
                return Err(ServiceError::BadCredentials);
            }
        };
        self.limits.refill(deadline, &self.limits.login_as_from(&user.username, client)).await?;
        self.limits.give_back(deadline, &self.limits.login_as(&user.username)).await?;

        let mut uow = self.store.write(deadline).await?;
        let outcome = self.open_session(&mut uow, user.id).await;
        let token = finish(uow, outcome).await?;
        Ok(SignedIn { user, token })
    }

    pub async fn logout(&self, deadline: Deadline, token: &str) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = uow.delete_session(&token_hash(token)).await.map(drop).map_err(Into::into);
        finish(uow, outcome).await
    }

    /// The user a bearer token belongs to; `Unauthenticated` if the token is unknown, revoked
    /// or expired.
    pub async fn authenticate(&self, deadline: Deadline, token: &str) -> ServiceResult<Caller> {
        let mut uow = self.store.read(deadline).await?;
        let session = uow.user_by_session(&token_hash(token), self.clock.now()).await?;
        let SessionUser { user, stats_version, social_version } = session.ok_or(ServiceError::Unauthenticated)?;
        Ok(Caller { user, stats_version, social_version })
    }

    pub async fn update_profile(
        &self,
        deadline: Deadline,
        user: UserId,
        display_name: Option<DisplayName>,
        timezone: Option<TimeZone>,
    ) -> ServiceResult<User> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            // Locked until the unit of work ends: two concurrent changes (one of the name, one
            // of the time zone) must not write back each other's stale field.
            let mut current = uow.user_by_id_for_update(user).await?.ok_or(ServiceError::NotFound)?;
            if let Some(display_name) = display_name {
                current.display_name = display_name;
            }
            if let Some(timezone) = timezone.filter(|tz| *tz != current.timezone) {
                current.timezone = timezone;
                // "Today" moved for this user's streak: cached statistics must not be reused.
                uow.bump_stats_version(user).await?;
            }
            uow.update_user_profile(&current).await?;
            Ok(current)
        }
        .await;
        finish(uow, outcome).await
    }

    /// The server's secret named `name`, shared by every replica: the first to ask makes it.
    pub async fn server_secret(&self, deadline: Deadline, name: &str) -> ServiceResult<String> {
        let candidate = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut uow = self.store.write(deadline).await?;
        let outcome = uow.server_key(name, &candidate).await.map_err(Into::into);
        finish(uow, outcome).await
    }

    pub async fn user(&self, deadline: Deadline, id: UserId) -> ServiceResult<User> {
        let mut uow = self.store.read(deadline).await?;
        uow.user_by_id(id).await?.ok_or(ServiceError::NotFound)
    }

    async fn open_session(&self, uow: &mut S::Uow, user_id: UserId) -> ServiceResult<SessionToken> {
        let token = SessionToken::generate();
        let now = self.clock.now();
        let ttl = TimeDelta::from_std(self.config.session_ttl).unwrap_or(TimeDelta::days(30));
        let session =
            NewSession { token_hash: token_hash(token.as_str()), user_id, created_at: now, expires_at: now + ttl };
        uow.insert_session(&session).await?;
        Ok(token)
    }

    async fn dummy_hash(&self) -> ServiceResult<String> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let random = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
                let password = Password::parse(&random).map_err(|e| ServiceError::Internal(e.to_string()))?;
                self.hashing.hash(password).await
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use stride_repository::Credentials;
    use stride_repository::mocks::{Access, MockStore, MockUnitOfWork, ready};
    use stride_repository::testing::deadline;

    use super::*;
    use crate::limits::LimitsConfig;
    use crate::test_support::{clock, now, person, store_of};
    use stride_domain::Admission;

    fn service(units: Vec<(Access, MockUnitOfWork)>) -> AuthService<MockStore> {
        with_config(units, AuthConfig::default())
    }

    fn with_config(units: Vec<(Access, MockUnitOfWork)>, config: AuthConfig) -> AuthService<MockStore> {
        let store = store_of(units);
        let limits = Limits::new(store.clone(), clock(), LimitsConfig::default());
        AuthService::new(store, clock(), config, limits)
    }

    const CLIENT: [u8; 4] = [192, 0, 2, 1];

    /// A unit of work that takes from the buckets `keys`, in that order: each admits, except
    /// the last when `refuse_last`.
    fn taking(keys: &[&str], refuse_last: bool) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        let mut sequence = mockall::Sequence::new();
        for (i, key) in keys.iter().enumerate() {
            let key = key.to_string();
            let refused = refuse_last && i + 1 == keys.len();
            unit.expect_take()
                .withf(move |taken, _, at| *taken == key && *at == now())
                .times(1)
                .in_sequence(&mut sequence)
                .returning(move |_, _, _| {
                    let retry_after = Duration::from_secs(180);
                    ready(Ok(if refused { Admission::Refused { retry_after } } else { Admission::Admitted }))
                });
        }
        unit.expect_commit().returning(|| ready(Ok(())));
        (Access::Write, unit)
    }

    fn credentials_of(user: &User, password_hash: &str) -> (Access, MockUnitOfWork) {
        let mut unit = MockUnitOfWork::new();
        let credentials = Credentials { user: user.clone(), password_hash: password_hash.to_owned() };
        unit.expect_credentials_by_username().returning(move |_| ready(Ok(Some(credentials.clone()))));
        (Access::Read, unit)
    }

    #[tokio::test]
    async fn a_taken_username_is_a_conflict_that_names_it() {
        let mut unit = MockUnitOfWork::new();
        unit.expect_insert_user()
            .returning(|_, _| ready(Err(RepoError::Conflict { constraint: "users_username_key".into() })));
        let registration = Registration {
            username: Username::parse("alice").unwrap(),
            password: Password::parse("correct horse battery").unwrap(),
            display_name: None,
            timezone: None,
        };
        unit.expect_rollback().times(1).returning(|| ready(Ok(())));
        let units = vec![taking(&["register-from:192.0.2.1"], false), (Access::Write, unit)];
        let got = service(units).register(deadline(), registration, CLIENT.into()).await;
        let Err(ServiceError::Conflict { code, message }) = got else { panic!("{got:?}") };
        assert_eq!((code, message.as_str()), ("username_taken", "username alice is already taken"));
    }

    #[tokio::test]
    async fn an_unknown_or_expired_token_is_unauthenticated() {
        let mut unit = MockUnitOfWork::new();
        unit.expect_user_by_session().returning(|_, _| ready(Ok(None)));
        let got = service(vec![(Access::Read, unit)]).authenticate(deadline(), "no-such-token").await;
        assert!(matches!(got, Err(ServiceError::Unauthenticated)), "{got:?}");
    }

    #[tokio::test]
    async fn a_token_is_looked_up_by_its_hash_never_by_itself() {
        let alice = person("alice");
        let mut unit = MockUnitOfWork::new();
        let expected = token_hash("the-token");
        let found = SessionUser { user: alice.clone(), stats_version: 7, social_version: 3 };
        unit.expect_user_by_session()
            .withf(move |hash, _| *hash == expected)
            .returning(move |_, _| ready(Ok(Some(found.clone()))));
        let caller = service(vec![(Access::Read, unit)]).authenticate(deadline(), "the-token").await.unwrap();
        assert_eq!(caller, Caller { user: alice, stats_version: 7, social_version: 3 });
    }

    #[tokio::test]
    async fn a_name_that_cannot_be_a_username_costs_an_address_token_and_nothing_else() {
        let config = AuthConfig {
            // No slot and no waiting room: a hash would answer `Busy`, not `BadCredentials`.
            hashing: HashingConfig { slots: 1, max_waiting: 0, max_wait: Duration::ZERO },
            ..AuthConfig::default()
        };
        let names = ["a b", "x", "ü", &"n".repeat(33)];
        let units = names.iter().map(|_| taking(&["login-from:192.0.2.1"], false)).collect();
        let auth = with_config(units, config);
        for name in names {
            let got = auth.login(deadline(), name, "whatever", CLIENT.into()).await;
            assert!(matches!(got, Err(ServiceError::BadCredentials)), "{name:?}: {got:?}");
        }
    }

    #[tokio::test]
    async fn a_login_takes_the_address_then_the_username_buckets_before_hashing_and_a_success_refills_its_own_and_gives_the_ceiling_back()
     {
        let alice = person("alice");
        let hashing = Hashing::new(HashingConfig::default());
        let stored = hashing.hash(Password::parse("the right password").unwrap()).await.unwrap();
        let other = hashing.hash(Password::parse("another password").unwrap()).await.unwrap();
        let buckets = ["login-from:192.0.2.1", "login-as-from:alice:192.0.2.1", "login-as:alice"];
        let mut refill = MockUnitOfWork::new();
        refill
            .expect_forget()
            .withf(|key| key == "login-as-from:alice:192.0.2.1")
            .times(1)
            .returning(|_| ready(Ok(())));
        refill.expect_commit().returning(|| ready(Ok(())));
        // The username's ceiling counts failures only: the success's token is given back.
        let mut give_back = MockUnitOfWork::new();
        give_back.expect_give_back().withf(|key, _| key == "login-as:alice").times(1).returning(|_, _| ready(Ok(())));
        give_back.expect_commit().returning(|| ready(Ok(())));
        let mut session = MockUnitOfWork::new();
        session.expect_insert_session().returning(|_| ready(Ok(())));
        session.expect_commit().returning(|| ready(Ok(())));
        let units = vec![
            taking(&buckets, false),
            credentials_of(&alice, &other),
            taking(&buckets, false),
            credentials_of(&alice, &stored),
            (Access::Write, refill),
            (Access::Write, give_back),
            (Access::Write, session),
        ];
        let auth = service(units);
        let wrong = auth.login(deadline(), "Alice", "a wrong password", CLIENT.into()).await;
        assert!(matches!(wrong, Err(ServiceError::BadCredentials)), "{wrong:?}");
        let signed_in = auth.login(deadline(), "ALICE", "the right password", CLIENT.into()).await.unwrap();
        assert_eq!(signed_in.user, alice, "usernames are case-insensitive");
    }

    #[tokio::test]
    async fn a_refused_bucket_answers_throttled_before_any_read_or_hash() {
        for refused_at in 1..=3 {
            let buckets = ["login-from:192.0.2.1", "login-as-from:alice:192.0.2.1", "login-as:alice"];
            // Only the buckets up to the refusing one are touched, and no other unit of work.
            let auth = service(vec![taking(&buckets[..refused_at], true)]);
            let got = auth.login(deadline(), "alice", "the right password", CLIENT.into()).await;
            let Err(ServiceError::Throttled { retry_after }) = got else { panic!("{got:?}") };
            assert_eq!(retry_after, Duration::from_secs(180));
        }
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_hash_to_32_bytes() {
        let token = SessionToken::generate();
        assert_eq!(token.as_str().len(), 43);
        assert!(token.as_str().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token, SessionToken::generate());
        assert!(!format!("{token:?}").contains(token.as_str()));
    }

    #[test]
    fn a_token_is_stored_as_the_sha256_of_its_text() {
        // FIPS 180-2's test vector: what is stored is the standard digest of the token's text,
        // so a leaked table of hashes gives nothing to present.
        let abc = token_hash("abc");
        let hex: String = abc.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let (one, two) = (SessionToken::generate(), SessionToken::generate());
        assert_ne!(token_hash(one.as_str()), token_hash(two.as_str()));
        assert_ne!(token_hash(one.as_str()).as_slice(), one.as_str().as_bytes(), "never the token itself");
    }
}
