//! The deadline and panic layers, set on the routes of each edge rather than chosen by looking
//! at the URL: a route that needs a longer deadline (an upload) gets its own layer, and each
//! edge renders a timeout or a panic in its own form — the API's JSON envelope, or an HTML page.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use stride_services::Deadline;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::ApiError;
use crate::extract::RequestDeadline;

/// `router`'s routes (those added so far), each under a deadline of `timeout` and a panic
/// guard, with failures rendered as `R`.
///
/// The deadline is minted here and put in the request for the services to carry into every
/// database call, so a slow dependency normally surfaces as a 504 from the service; the timer
/// around the handler is the backstop for anything that does not honour it. On expiry the
/// handler future is dropped, which rolls back any unit of work it had open.
pub(crate) fn guarded<R, S>(router: Router<S>, timeout: Duration) -> Router<S>
where
    R: From<ApiError> + IntoResponse + 'static,
    S: Clone + Send + Sync + 'static,
{
    router
        .route_layer(middleware::from_fn_with_state(timeout, enforce_deadline::<R>))
        .route_layer(CatchPanicLayer::custom(panicked::<R>))
}

/// [`guarded`] for the API's documented routes.
pub(crate) fn guarded_api<S>(router: OpenApiRouter<S>, timeout: Duration) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .route_layer(middleware::from_fn_with_state(timeout, enforce_deadline::<ApiError>))
        .route_layer(CatchPanicLayer::custom(panicked::<ApiError>))
}

fn panicked<R: From<ApiError> + IntoResponse>(_: Box<dyn std::any::Any + Send>) -> Response {
    R::from(ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR)).into_response()
}

async fn enforce_deadline<R: From<ApiError> + IntoResponse>(
    State(timeout): State<Duration>,
    mut req: Request,
    next: Next,
) -> Response {
    let deadline = Deadline::after(timeout);
    req.extensions_mut().insert(RequestDeadline(deadline));
    match deadline.run(next.run(req)).await {
        Ok(response) => response,
        Err(_) => R::from(ApiError::timeout()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::pages::PageError;

    /// A handler that takes 5 s, as a slow upload does.
    async fn slow(RequestDeadline(deadline): RequestDeadline) -> String {
        tokio::time::sleep(Duration::from_secs(5)).await;
        format!("{:?} left", deadline.remaining())
    }

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    fn app() -> Router {
        let api = guarded::<ApiError, ()>(Router::new().route("/api/slow", get(slow)), Duration::from_secs(1))
            .merge(guarded::<ApiError, ()>(Router::new().route("/api/upload", get(slow)), Duration::from_secs(60)))
            .merge(guarded::<ApiError, ()>(Router::new().route("/api/boom", get(boom)), Duration::from_secs(1)));
        let pages = guarded::<PageError, ()>(
            Router::new().route("/slow", get(slow)).route("/boom", get(boom)),
            Duration::from_secs(1),
        );
        api.merge(pages)
    }

    async fn call(path: &str) -> (StatusCode, String, String) {
        let response = app().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let kind = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn each_route_keeps_its_own_deadline() {
        let (status, kind, body) = call("/api/slow").await;
        assert_eq!((status, kind.as_str()), (StatusCode::GATEWAY_TIMEOUT, "application/json"), "{body}");
        assert!(body.contains("deadline_exceeded"), "{body}");
        let (status, _, body) = call("/api/upload").await;
        assert_eq!(status, StatusCode::OK, "the upload route's own 60 s deadline holds: {body}");
        assert!(body.starts_with("55"), "the handler saw the 60 s deadline: {body}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_that_times_out_or_panics_answers_with_an_html_page_and_the_api_with_json() {
        let (status, kind, body) = call("/slow").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(kind.starts_with("text/html"), "{kind}: {body}");
        let (status, kind, _) = call("/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(kind.starts_with("text/html"), "{kind}");
        let (status, kind, body) = call("/api/boom").await;
        assert_eq!((status, kind.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "application/json"));
        assert!(body.contains("\"internal\""), "{body}");
    }
}
