//! The page handlers, one module per resource like the API's `routes/`: each reads its form or
//! query, calls the same service the API calls, and answers with a page, a 303 to the page that
//! shows the result, or a [`PageError`] page. This file holds what they share: the form
//! extractor that checks the CSRF token first, and the query shapes.

mod activities;
mod auth;
mod dashboard;
mod friends;
mod tracks;

pub(crate) use activities::*;
pub(crate) use auth::*;
pub(crate) use dashboard::*;
pub(crate) use friends::*;
pub(crate) use tracks::*;

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use stride_domain::{ActivityCursor, Cursor};

use super::PageError;
use super::session::{ExpectedCsrf, check_csrf};
use crate::ApiError;
use crate::extract::read_limited;
use crate::state::JsonBodyLimit;

const PAGE_SIZE: u32 = 20;

/// A urlencoded form post, its CSRF token checked before anything else is read from it: a
/// post without the token of the request's `stride_csrf` cookie is a 403 page, whatever else
/// it holds, and a malformed one is a 400 page. Every page form goes through this extractor,
/// so no handler can forget the check.
pub(crate) struct PageForm<T>(T);

#[derive(Deserialize)]
struct SubmittedToken {
    csrf: Option<String>,
}

impl<S, T> FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
    JsonBodyLimit: FromRef<S>,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bad_request = |message: String| PageError::Api(ApiError::bad_request(message));
        let urlencoded = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err(bad_request("a form post must be application/x-www-form-urlencoded".into()));
        }
        // Put there by `PageContext`, which every form handler takes before its form.
        let expected = req.extensions().get::<ExpectedCsrf>().and_then(|expected| expected.0.clone());
        // The API's body limit, answered alike: 413, as a page.
        let (_, body) = read_limited(req, JsonBodyLimit::from_ref(state)).await.map_err(PageError::Api)?;
        let token: SubmittedToken = serde_urlencoded::from_bytes(&body).map_err(|e| bad_request(e.to_string()))?;
        check_csrf(expected.as_deref(), token.csrf.as_deref())?;
        serde_urlencoded::from_bytes(&body).map(Self).map_err(|e| bad_request(e.to_string()))
    }
}

/// A post whose form holds nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub(crate) struct Confirmed {}

/// The upload form's token, which travels in the query (its body is the multipart stream).
#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CursorQuery {
    cursor: Option<String>,
}

fn cursor(query: &CursorQuery) -> Result<Option<ActivityCursor>, PageError> {
    query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(ActivityCursor::decode)
        .transpose()
        .map_err(|e| PageError::Api(ApiError::invalid("cursor", e)))
}
