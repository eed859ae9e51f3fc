//! The dashboard and the feed: the pages a person lands on.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use stride_domain::Cursor;
use stride_services::Store;

use crate::extract::RequestDeadline;
use crate::pages::views::{self};
use crate::pages::{PageContext, PageError, page};
use crate::state::AppState;

use super::*;

pub(crate) async fn dashboard<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let (stats, weekly) =
        tokio::try_join!(app.stride.stats.own(deadline, caller), app.stride.stats.weekly(deadline, caller, 12))?;
    Ok(page(&context, StatusCode::OK, views::dashboard(caller, &context.csrf, &stats, &weekly)))
}

pub(crate) async fn feed<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<CursorQuery>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    let page_of = app.stride.feed.page(deadline, caller, cursor(&query)?, PAGE_SIZE).await?;
    // Thumbnails only for the items that have photos, fetched side by side.
    let photos = futures::future::try_join_all(page_of.items.iter().map(|item| {
        let (photos, viewer, id, any) =
            (&app.stride.photos, caller.user.id, item.activity.id, item.activity.photo_count > 0);
        async move { if any { photos.list(deadline, viewer, id).await } else { Ok(Vec::new()) } }
    }))
    .await?;
    let next = page_of.next_cursor.as_ref().map(Cursor::encode);
    let items: Vec<_> = page_of.items.into_iter().zip(photos).collect();
    Ok(page(&context, StatusCode::OK, views::feed(caller, &context.csrf, &items, next)))
}
