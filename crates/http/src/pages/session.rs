//! The web app's session and CSRF cookies.
//!
//! A browser signs in to the same `sessions` table as an API client: the cookie holds the same
//! kind of opaque token a bearer header does, with the same lifetime, and logging out ends that
//! one session. The API (`/api/v1`) never reads this cookie, so no cross-site form can act on
//! it through the API.
//!
//! CSRF: every form carries a token that must equal the `stride_csrf` cookie (a double-submit
//! token). A page sets the cookie the first time it renders a form; a cross-site page can make
//! the browser send the cookie but can neither read it nor guess it, so it cannot fill in the
//! field. Login and sign-up are protected the same way (login CSRF).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use stride_services::{Caller, Store};

use super::PageError;
use crate::extract::RequestDeadline;
use crate::state::AppState;

pub(crate) const SESSION_COOKIE: &str = "stride_session";
pub(crate) const CSRF_COOKIE: &str = "stride_csrf";

/// How the web app's cookies are issued.
#[derive(Debug, Clone, Copy)]
pub struct CookieConfig {
    /// `Secure`: only over HTTPS (`STRIDE_COOKIE_SECURE`, for a TLS-terminating deployment).
    pub secure: bool,
    /// The session cookie's `Max-Age`: the sessions' own lifetime.
    pub session_max_age: std::time::Duration,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self { secure: false, session_max_age: std::time::Duration::from_secs(30 * 24 * 3600) }
    }
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, for the whole site.
pub(crate) fn cookie(config: CookieConfig, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if config.secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("stride_invalid=1"))
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

fn fresh_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What every page knows about its request: who is signed in (if anyone) and the CSRF token
/// its forms carry.
pub(crate) struct PageContext {
    pub(crate) caller: Option<Caller>,
    /// The session token, for logging out.
    pub(crate) session: Option<String>,
    pub(crate) csrf: String,
    /// The CSRF cookie to set: the request had none.
    pub(crate) new_csrf: bool,
    pub(crate) cookies: CookieConfig,
}

impl PageContext {
    /// The signed-in caller, or a redirect to the sign-in page.
    pub(crate) fn user(&self) -> Result<&Caller, PageError> {
        self.caller.as_ref().ok_or(PageError::SignIn)
    }

    /// Refuses a form whose token is missing or does not match the cookie (403).
    pub(crate) fn check_csrf(&self, submitted: Option<&str>) -> Result<(), PageError> {
        check_csrf((!self.new_csrf).then_some(self.csrf.as_str()), submitted)
    }
}

/// The request's CSRF cookie, if it sent a well-formed one.
pub(crate) fn csrf_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, CSRF_COOKIE).filter(|token| token.len() == 43)
}

/// Refuses (403) unless the request had a CSRF cookie and `submitted` equals it.
pub(crate) fn check_csrf(cookie: Option<&str>, submitted: Option<&str>) -> Result<(), PageError> {
    let matches = cookie.zip(submitted).is_some_and(|(cookie, token)| {
        let (a, b) = (token.as_bytes(), cookie.as_bytes());
        // Constant time, so the comparison leaks nothing about the cookie.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if matches { Ok(()) } else { Err(PageError::Csrf) }
}

impl<S: Store> FromRequestParts<AppState<S>> for PageContext {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let RequestDeadline(deadline) =
            RequestDeadline::from_request_parts(parts, state).await.map_err(PageError::from)?;
        let session = cookie_value(&parts.headers, SESSION_COOKIE).map(str::to_owned);
        let caller = match &session {
            // An unknown or expired session is simply signed out.
            Some(token) => match state.stride.auth.authenticate(deadline, token).await {
                Ok(caller) => Some(caller),
                Err(stride_services::ServiceError::Unauthenticated) => None,
                Err(other) => return Err(PageError::from(crate::ApiError::from(other))),
            },
            None => None,
        };
        let existing = csrf_cookie(&parts.headers).map(str::to_owned);
        let new_csrf = existing.is_none();
        let csrf = existing.unwrap_or_else(fresh_token);
        Ok(Self { caller, session, csrf, new_csrf, cookies: state.cookies })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name_and_written_http_only_and_lax() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; stride_session=tok; stride_session_x=no"));
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie_value(&headers, CSRF_COOKIE), None);
        let set = cookie(CookieConfig { secure: true, ..Default::default() }, SESSION_COOKIE, "tok", 60);
        assert_eq!(set, "stride_session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
        let plain = cookie(CookieConfig::default(), CSRF_COOKIE, "t", 60);
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn a_form_passes_only_with_the_cookies_token() {
        let context = |csrf: &str, new_csrf| PageContext {
            caller: None,
            session: None,
            csrf: csrf.to_owned(),
            new_csrf,
            cookies: CookieConfig::default(),
        };
        let token = fresh_token();
        assert!(context(&token, false).check_csrf(Some(&token)).is_ok());
        assert!(context(&token, false).check_csrf(None).is_err());
        assert!(context(&token, false).check_csrf(Some(&fresh_token())).is_err());
        assert!(context(&token, true).check_csrf(Some(&token)).is_err(), "no cookie came with the form");
    }
}
