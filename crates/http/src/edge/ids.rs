//! Ids in paths: the route's path parameter parsed once, by an extractor, instead of by hand
//! in every handler.

use std::marker::PhantomData;
use std::str::FromStr;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::response::IntoResponse;

use crate::ApiError;

/// The route's first path parameter, parsed as an id (`/activities/{id}`, `/blocks/{user_id}`,
/// `/friends/requests/{id}/{action}`). A segment that is not an id answers 404, exactly like an
/// id that names nothing, as the contract asks. `R` is how that 404 is rendered: the API's
/// JSON envelope by default, an HTML page on the web app's routes.
pub(crate) struct PathId<T, R = ApiError>(pub T, pub(crate) PhantomData<fn() -> R>);

impl<T, R, S> FromRequestParts<S> for PathId<T, R>
where
    T: FromStr,
    R: From<ApiError> + IntoResponse,
    S: Send + Sync,
{
    type Rejection = R;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let not_found = || R::from(ApiError::not_found());
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| not_found())?;
        let (_, raw) = params.iter().next().ok_or_else(not_found)?;
        raw.parse().map(|id| Self(id, PhantomData)).map_err(|_| not_found())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use stride_domain::ActivityId;
    use tower::ServiceExt;

    use super::*;

    async fn status_of(path: &str) -> (StatusCode, String) {
        let app = Router::new()
            .route("/a/{id}", get(|PathId(id, ..): PathId<ActivityId>| async move { id.to_string() }))
            .route("/a/{id}/{action}", get(|PathId(id, ..): PathId<ActivityId>| async move { id.to_string() }));
        let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn an_id_is_parsed_from_the_first_parameter_and_anything_else_is_not_found() {
        let id = ActivityId::new();
        assert_eq!(status_of(&format!("/a/{id}")).await, (StatusCode::OK, id.to_string()));
        assert_eq!(status_of(&format!("/a/{id}/accept")).await, (StatusCode::OK, id.to_string()));
        let (status, body) = status_of("/a/not-an-id").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"not_found\""), "{body}");
        assert_eq!(status_of("/a/%FF").await.0, StatusCode::NOT_FOUND, "not UTF-8 once decoded");
    }
}
