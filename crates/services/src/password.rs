//! Password hashing with argon2id, always on the blocking pool: one hash costs tens of
//! milliseconds of CPU, which would otherwise stall every task sharing the async worker thread.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use stride_domain::Password;
use tracing::Instrument;

use crate::{ServiceError, ServiceResult};

pub(crate) async fn hash(password: Password) -> ServiceResult<String> {
    blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| ServiceError::Internal(format!("hash password: {e}")))
    })
    .await
}

/// `true` if `password` matches `stored_hash`. A malformed stored hash never matches.
pub(crate) async fn verify(password: String, stored_hash: String) -> ServiceResult<bool> {
    blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return Ok(false);
        };
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ServiceResult<T> + Send + 'static) -> ServiceResult<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .in_current_span()
        .await
        .map_err(|e| ServiceError::Internal(format!("password task failed: {e}")))?
}
