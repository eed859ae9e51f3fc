//! The web app's session and CSRF cookies.
//!
//! A browser signs in to the same `sessions` table as an API client: the cookie holds the same
//! kind of opaque token a bearer header does, with the same lifetime, and logging out ends that
//! one session. The API (`/api/v1`) never reads this cookie, so no cross-site form can act on
//! it through the API.
//!
//! CSRF: every form carries a token the server computes and an attacker cannot: the HMAC
//! (SHA-256, under a server key kept in the database or `STRIDE_SECRET_KEY`) of the browser's
//! session token, or, before sign-in (login and sign-up forms), of a random pre-session nonce
//! kept in the `stride_csrf` cookie. A cross-site page can make the browser send the cookies
//! but can read neither them nor the token; and whoever can *set* a cookie for the host (a
//! sibling subdomain, plain HTTP) cannot make a token for it without the key. The token moves
//! with the session (a new one at login) and the nonce is replaced at login and logout. When the
//! cookies are `Secure` their names carry the `__Host-` prefix, which a browser only accepts
//! from this very host over HTTPS, without a `Domain`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use stride_services::{Caller, Store};

use super::PageError;
use crate::extract::RequestDeadline;
use crate::state::AppState;

/// The web app's two cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieName {
    Session,
    /// The pre-session nonce.
    Csrf,
}

/// How the web app's cookies are issued and its CSRF tokens made.
#[derive(Clone, Copy)]
pub struct CookieConfig {
    /// `Secure` (and `__Host-` names): only over HTTPS. The server's default except on a
    /// loopback listener without a proxy (`STRIDE_COOKIE_SECURE` overrides).
    pub secure: bool,
    /// The session cookie's `Max-Age`: the sessions' own lifetime.
    pub session_max_age: std::time::Duration,
    /// The HMAC key of the CSRF tokens, shared by every replica.
    pub csrf_key: [u8; 32],
}

impl std::fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("secure", &self.secure)
            .field("session_max_age", &self.session_max_age)
            .field("csrf_key", &"<redacted>")
            .finish()
    }
}

impl Default for CookieConfig {
    /// Plain-HTTP cookies and a key of its own (one process, tests).
    fn default() -> Self {
        Self {
            secure: false,
            session_max_age: std::time::Duration::from_secs(30 * 24 * 3600),
            csrf_key: rand::random(),
        }
    }
}

impl CookieConfig {
    pub(crate) fn name(&self, cookie: CookieName) -> &'static str {
        match (cookie, self.secure) {
            (CookieName::Session, false) => "stride_session",
            (CookieName::Session, true) => "__Host-stride_session",
            (CookieName::Csrf, false) => "stride_csrf",
            (CookieName::Csrf, true) => "__Host-stride_csrf",
        }
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, for the whole site.
    pub(crate) fn set(&self, cookie: CookieName, value: &str, max_age_secs: u64) -> HeaderValue {
        let name = self.name(cookie);
        let secure = if self.secure { "; Secure" } else { "" };
        let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("stride_invalid=1"))
    }

    /// A fresh pre-session nonce's cookie (a year: it identifies nobody).
    pub(crate) fn fresh_nonce(&self) -> (String, HeaderValue) {
        let nonce = fresh_nonce();
        let cookie = self.set(CookieName::Csrf, &nonce, 365 * 24 * 3600);
        (nonce, cookie)
    }

    /// The token a form must carry for this binding.
    pub(crate) fn csrf_token(&self, binding: Binding<'_>) -> String {
        let (label, value) = match binding {
            Binding::Session(token) => ("session", token),
            Binding::PreSession(nonce) => ("pre-session", nonce),
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.csrf_key).expect("HMAC takes a key of any length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// What a CSRF token is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding<'a> {
    /// The signed-in browser's session token.
    Session(&'a str),
    /// The pre-session nonce of a browser that is not signed in.
    PreSession(&'a str),
}

/// The value of one cookie of the request, if sent.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name && !value.is_empty()).then_some(value))
}

fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What every page knows about its request: who is signed in (if anyone) and the CSRF token
/// its forms carry.
pub(crate) struct PageContext {
    pub(crate) caller: Option<Caller>,
    /// The session token, for logging out.
    pub(crate) session: Option<String>,
    /// The token this request's forms carry.
    pub(crate) csrf: String,
    /// A nonce cookie to set: the request was not signed in and had none.
    pub(crate) new_nonce: Option<HeaderValue>,
    pub(crate) cookies: CookieConfig,
}

/// The token a form posted with this request must carry; `None` when the request had nothing
/// a token could be bound to. Put in the request's extensions by [`PageContext`], where the form
/// extractor finds it.
#[derive(Clone)]
pub(crate) struct ExpectedCsrf(pub(crate) Option<String>);

impl PageContext {
    /// The signed-in caller, or a redirect to the sign-in page.
    pub(crate) fn user(&self) -> Result<&Caller, PageError> {
        self.caller.as_ref().ok_or(PageError::SignIn)
    }

    /// Refuses a form whose token is missing or is not this request's (403).
    pub(crate) fn check_csrf(&self, submitted: Option<&str>) -> Result<(), PageError> {
        check_csrf(self.new_nonce.is_none().then_some(self.csrf.as_str()), submitted)
    }
}

/// Refuses (403) unless there is an expected token and `submitted` equals it.
pub(crate) fn check_csrf(expected: Option<&str>, submitted: Option<&str>) -> Result<(), PageError> {
    let matches = expected.zip(submitted).is_some_and(|(expected, token)| {
        let (a, b) = (token.as_bytes(), expected.as_bytes());
        // Constant time, so the comparison leaks nothing about the expected token.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if matches { Ok(()) } else { Err(PageError::Csrf) }
}

impl<S: Store> FromRequestParts<AppState<S>> for PageContext {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let RequestDeadline(deadline) =
            RequestDeadline::from_request_parts(parts, state).await.map_err(PageError::from)?;
        let cookies = state.cookies;
        let session = cookie_value(&parts.headers, cookies.name(CookieName::Session)).map(str::to_owned);
        let caller = match &session {
            // An unknown or expired session is simply signed out.
            Some(token) => match state.stride.auth.authenticate(deadline, token).await {
                Ok(caller) => Some(caller),
                Err(stride_services::ServiceError::Unauthenticated) => None,
                Err(other) => return Err(PageError::from(crate::ApiError::from(other))),
            },
            None => None,
        };
        let nonce = cookie_value(&parts.headers, cookies.name(CookieName::Csrf)).filter(|nonce| nonce.len() == 43);
        let (csrf, new_nonce) = match (&caller, &session, nonce) {
            (Some(_), Some(token), _) => (cookies.csrf_token(Binding::Session(token)), None),
            (_, _, Some(nonce)) => (cookies.csrf_token(Binding::PreSession(nonce)), None),
            _ => {
                let (nonce, cookie) = cookies.fresh_nonce();
                (cookies.csrf_token(Binding::PreSession(&nonce)), Some(cookie))
            }
        };
        parts.extensions.insert(ExpectedCsrf(new_nonce.is_none().then(|| csrf.clone())));
        Ok(Self { caller, session, csrf, new_nonce, cookies })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name_and_written_http_only_and_lax_with_host_names_when_secure() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; stride_session=tok; stride_session_x=no"));
        assert_eq!(cookie_value(&headers, "stride_session"), Some("tok"));
        assert_eq!(cookie_value(&headers, "stride_csrf"), None);
        let secure = CookieConfig { secure: true, ..Default::default() };
        assert_eq!(
            secure.set(CookieName::Session, "tok", 60),
            "__Host-stride_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert_eq!(secure.name(CookieName::Csrf), "__Host-stride_csrf");
        let plain = CookieConfig::default().set(CookieName::Csrf, "t", 60);
        assert_eq!(plain, "stride_csrf=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
    }

    #[test]
    fn a_token_is_bound_to_its_key_its_kind_and_its_value() {
        let config = CookieConfig::default();
        let nonce = fresh_nonce();
        let token = config.csrf_token(Binding::PreSession(&nonce));
        assert_eq!(token.len(), 43);
        assert_eq!(token, config.csrf_token(Binding::PreSession(&nonce)), "the same binding, the same token");
        assert_ne!(token, nonce, "a cookie's own value is not its token");
        assert_ne!(token, config.csrf_token(Binding::Session(&nonce)), "a nonce's token is not a session's");
        assert_ne!(token, config.csrf_token(Binding::PreSession(&fresh_nonce())));
        let other_key = CookieConfig { csrf_key: [7; 32], ..config };
        assert_ne!(token, other_key.csrf_token(Binding::PreSession(&nonce)), "another server key");
    }

    #[test]
    fn a_form_passes_only_with_the_expected_token() {
        let token = fresh_nonce();
        assert!(check_csrf(Some(&token), Some(&token)).is_ok());
        assert!(check_csrf(Some(&token), None).is_err());
        assert!(check_csrf(Some(&token), Some(&fresh_nonce())).is_err());
        assert!(check_csrf(None, Some(&token)).is_err(), "nothing to bind to: always refused");
        assert!(check_csrf(Some(&token), Some(&token[..42])).is_err());
    }
}
