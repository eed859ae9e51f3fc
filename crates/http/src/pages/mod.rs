//! The web app: server-rendered pages for people, beside the JSON API in the same router.
//!
//! Pages call the same services as the API — never the API over HTTP — and have their own
//! error type, [`PageError`], which answers with an HTML page (404, 422, 403, 429, 500…) where
//! the API answers with its JSON envelope. Templates are maud macros compiled into the binary;
//! the one stylesheet and the one small script are embedded too (no build step). Every page is
//! readable without JavaScript; the script only adds upload progress and the browser's time
//! zone on sign-up. Pages are served with a Content-Security-Policy that allows no inline
//! script, and with frame, sniffing and referrer protections.

mod handlers;
mod session;
mod views;

use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use maud::Markup;
use stride_services::{ServiceError, Store};

pub use session::CookieConfig;
pub(crate) use session::PageContext;

use crate::ApiError;
use crate::edge::guarded;
use crate::state::AppState;

/// A page's id in its path; a segment that is not one is the HTML 404 page.
pub(crate) type PageId<T> = crate::edge::PathId<T, PageError>;

/// The pages and their assets: every page under the request deadline, the photo form under the
/// upload deadline, each rendering a timeout or a panic as an HTML page.
pub(crate) fn routes<S: Store>(config: &crate::HttpConfig) -> Router<AppState<S>> {
    let (pages, uploads, imports) = tables::<S>();
    guarded::<PageError, _>(pages.router, config.request_timeout)
        .merge(guarded::<PageError, _>(uploads.router, config.upload_timeout))
        .merge(guarded::<PageError, _>(imports.router, crate::edge::BODY_WITHOUT_DEADLINE))
        .layer(middleware::from_fn(security_headers))
}

/// Every path of the web app that takes a POST, as the router serves it (with its `{…}`
/// parameters): what a test must cover to know that no form skips the CSRF check.
pub fn form_paths<S: Store>() -> Vec<&'static str> {
    let (pages, uploads, imports) = tables::<S>();
    pages.posts.into_iter().chain(uploads.posts).chain(imports.posts).collect()
}

/// The page routes (under the request deadline), the photo form (under the upload deadline)
/// and the import form (under the stall timeout only: an archive may be large).
fn tables<S: Store>() -> (Table<S>, Table<S>, Table<S>) {
    use handlers::*;
    let uploads = Table::default().post("/activities/{id}/photos", upload_photos::<S>);
    let imports = Table::default().post("/imports", upload_import::<S>);
    let pages = Table::default()
        .get("/", dashboard::<S>)
        .get_post("/login", login_page, login::<S>)
        .get_post("/signup", signup_page, signup::<S>)
        .post("/logout", logout::<S>)
        .get_post("/activities", activities::<S>, create_activity::<S>)
        .get("/activities/new", new_activity)
        .get("/activities/{id}", activity::<S>)
        .get_post("/activities/{id}/edit", edit_activity::<S>, update_activity::<S>)
        .get_post("/activities/{id}/delete", confirm_delete::<S>, delete_activity::<S>)
        .get("/photos/{id}/thumb", photo_thumb::<S>)
        .get("/photos/{id}/display", photo_display::<S>)
        .get("/friends", friends::<S>)
        .post("/friends/requests", send_request::<S>)
        .post("/friends/requests/{id}/{action}", answer_request::<S>)
        .post("/friends/{user_id}/remove", unfriend::<S>)
        .post("/blocks", block::<S>)
        .post("/blocks/{user_id}/remove", unblock::<S>)
        .get("/feed", feed::<S>)
        .get("/imports", imports_page::<S>)
        .get("/imports/{id}", import_page::<S>)
        .post("/imports/{id}/cancel", cancel_import_page::<S>)
        .get("/activities/{id}/export.gpx", export_gpx_page::<S>)
        .get_post("/settings/privacy", privacy_page::<S>, add_zone::<S>)
        .post("/settings/privacy/{id}/delete", remove_zone::<S>)
        .get("/static/app.css", stylesheet)
        .get("/static/app.js", script);
    (pages, uploads, imports)
}

/// A router that remembers which of its paths take a POST.
struct Table<S> {
    router: Router<AppState<S>>,
    posts: Vec<&'static str>,
}

impl<S: Store> Default for Table<S> {
    fn default() -> Self {
        Self { router: Router::new(), posts: Vec::new() }
    }
}

impl<S: Store> Table<S> {
    fn get<H: Handler<T, AppState<S>>, T: 'static>(mut self, path: &'static str, page: H) -> Self {
        self.router = self.router.route(path, get(page));
        self
    }

    fn post<H: Handler<T, AppState<S>>, T: 'static>(mut self, path: &'static str, form: H) -> Self {
        self.router = self.router.route(path, post(form));
        self.posts.push(path);
        self
    }

    fn get_post<G, P, T, U>(mut self, path: &'static str, page: G, form: P) -> Self
    where
        G: Handler<T, AppState<S>>,
        P: Handler<U, AppState<S>>,
        T: 'static,
        U: 'static,
    {
        self.router = self.router.route(path, get(page).post(form));
        self.posts.push(path);
        self
    }
}

/// Any path outside the API and the pages: the HTML 404.
pub(crate) async fn not_found() -> Response {
    with_security_headers(PageError::NotFound.into_response())
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    with_security_headers(next.run(request).await)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // A page shows one person's data as it is now: no copy of it may outlive a sign-out, a
    // block or a visibility change in a shared browser's cache. (Assets and photos say
    // otherwise for themselves.)
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const STYLESHEET: &str = include_str!("assets/app.css");
const SCRIPT: &str = include_str!("assets/app.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// Embedded assets change only with the binary: a day's caching, revalidated by ETag.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let etag = format!("\"{}-{:x}\"", env!("CARGO_PKG_VERSION"), body.len());
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            (header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""))),
        ],
        body,
    )
        .into_response()
}

/// A page and its status, with the CSRF cookie if this request minted the token.
pub(crate) fn page(context: &PageContext, status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    if let Some(cookie) = &context.new_nonce {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// After a successful form post: see the result (303, so a reload does not post again).
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Why a page could not be shown, answered as an HTML page with the right status.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn,
    /// A form without a valid CSRF token.
    Csrf,
    NotFound,
    /// Anything the API would answer with an error, with its status and message.
    Api(ApiError),
}

/// An error of the edge (a malformed form, an upload over its limit, a timeout): its status,
/// code and message as an HTML page; a 404 is the page's own not-found page.
impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        if error.status == StatusCode::NOT_FOUND { PageError::NotFound } else { PageError::Api(error) }
    }
}

/// A service's answer, by its kind: a session that ended sends the person to sign in, and the
/// rest is rendered from the one mapping to (status, code, message) the API uses too.
impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Unauthenticated => PageError::SignIn,
            ServiceError::NotFound => PageError::NotFound,
            other => PageError::Api(ApiError::from(other)),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message, retry_after) = match self {
            PageError::SignIn => return see_other("/login"),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from a Stride page (or its security token expired). Go back, reload the \
                 page and try again."
                    .to_owned(),
                None,
            ),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not yours to see.".to_owned(),
                None,
            ),
            PageError::Api(error) => {
                let title = match error.status {
                    StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "Please check what you entered",
                    StatusCode::PAYLOAD_TOO_LARGE => "Too large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "Not a supported file",
                    StatusCode::CONFLICT => "That did not work",
                    StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => "Stride is busy",
                    _ => "Something went wrong",
                };
                let message = if error.status.is_server_error()
                    && error.status != StatusCode::SERVICE_UNAVAILABLE
                    && error.status != StatusCode::GATEWAY_TIMEOUT
                {
                    "Something went wrong on our side. Please try again.".to_owned()
                } else {
                    error.message
                };
                (error.status, title, message, error.retry_after)
            }
        };
        let mut response =
            (status, axum::response::Html(views::error_page(title, &message).into_string())).into_response();
        if let Some(after) = retry_after {
            let seconds = HeaderValue::from(after.as_secs().max(1));
            response.headers_mut().insert(HeaderName::from_static("retry-after"), seconds);
        }
        response
    }
}
