//! Signing in, signing up and signing out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::Response;
use serde::Deserialize;
use stride_domain::{Password, Username};
use stride_services::{Registration, ServiceError, SignedIn, Store};

use crate::ApiError;
use crate::dto::{LoginRequest, parse_display_name, parse_timezone};
use crate::extract::{ClientAddr, RequestDeadline};
use crate::pages::session::CookieName;
use crate::pages::views::{self};
use crate::pages::{PageContext, PageError, page, see_other};
use crate::state::AppState;

use super::*;

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login_page(context: PageContext) -> Response {
    if context.caller.is_some() {
        return see_other("/");
    }
    page(&context, StatusCode::OK, views::login(&context.csrf, "", None))
}

/// Signed in: the session cookie (the forms' tokens are now bound to it), a new pre-session
/// nonce in place of the one used to sign in, and on to the dashboard.
fn signed_in(context: &PageContext, token: &str) -> Response {
    let mut response = see_other("/");
    let max_age = context.cookies.session_max_age.as_secs();
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, context.cookies.set(CookieName::Session, token, max_age));
    headers.append(SET_COOKIE, context.cookies.fresh_nonce().1);
    response
}

pub(crate) async fn login<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    ClientAddr(client): ClientAddr,
    context: PageContext,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    let again =
        |status, message: &str| page(&context, status, views::login(&context.csrf, &form.username, Some(message)));
    let request = LoginRequest { username: form.username.clone(), password: form.password.clone() };
    if let Err(error) = request.check_lengths() {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &error.message));
    }
    match app.stride.auth.login(deadline, &form.username, &form.password, client).await {
        Ok(SignedIn { token, .. }) => Ok(signed_in(&context, token.as_str())),
        Err(ServiceError::Unauthenticated) => Ok(again(StatusCode::UNAUTHORIZED, "Wrong username or password.")),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    display_name: Option<String>,
    timezone: Option<String>,
}

pub(crate) async fn signup_page(context: PageContext) -> Response {
    if context.caller.is_some() {
        return see_other("/");
    }
    page(&context, StatusCode::OK, views::signup(&context.csrf, "", "UTC", None))
}

pub(crate) async fn signup<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    ClientAddr(client): ClientAddr,
    context: PageContext,
    PageForm(form): PageForm<SignupForm>,
) -> Result<Response, PageError> {
    let timezone = form.timezone.as_deref().unwrap_or("UTC");
    let again = |status, message: &str| {
        page(&context, status, views::signup(&context.csrf, &form.username, timezone, Some(message)))
    };
    let registration = (|| {
        Ok::<_, ApiError>(Registration {
            username: Username::parse(&form.username).map_err(|e| ApiError::invalid("username", e))?,
            password: Password::parse(&form.password).map_err(|e| ApiError::invalid("password", e))?,
            display_name: form
                .display_name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(parse_display_name)
                .transpose()?,
            timezone: Some(parse_timezone(timezone)?),
        })
    })();
    let registration = match registration {
        Ok(registration) => registration,
        Err(error) => return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &error.message)),
    };
    match app.stride.auth.register(deadline, registration, client).await {
        Ok(SignedIn { token, .. }) => Ok(signed_in(&context, token.as_str())),
        Err(ServiceError::Conflict { message, .. }) => Ok(again(StatusCode::CONFLICT, &message)),
        Err(other) => Err(other.into()),
    }
}

/// Ends this browser's session only; other sessions (other devices, API tokens) go on.
pub(crate) async fn logout<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    _: PageForm<Confirmed>,
) -> Result<Response, PageError> {
    if let Some(token) = &context.session {
        app.stride.auth.logout(deadline, token).await?;
    }
    let mut response = see_other("/login");
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, context.cookies.set(CookieName::Session, "gone", 0));
    headers.append(SET_COOKIE, context.cookies.fresh_nonce().1);
    Ok(response)
}
