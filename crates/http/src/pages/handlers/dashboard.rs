//! The dashboard and the feed: the pages a person lands on.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use stride_domain::{Cursor, Period, Sport};
use stride_services::Store;

use crate::extract::RequestDeadline;
use crate::pages::views::{self};
use crate::pages::{PageContext, PageError, page};
use crate::state::AppState;

use super::*;

/// `/?period=month|year&sport=…&records=…`: what the dashboard's charts and records show.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct DashboardQuery {
    period: Option<String>,
    sport: Option<String>,
    records: Option<String>,
}

pub(crate) async fn dashboard<S: Store>(
    State(app): State<AppState<S>>,
    RequestDeadline(deadline): RequestDeadline,
    context: PageContext,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, PageError> {
    let caller = context.user()?;
    // Unknown values fall back to the defaults: a dashboard link never fails.
    let period = if query.period.as_deref() == Some("year") { Period::Year } else { Period::Month };
    let sport = query.sport.as_deref().and_then(|s| s.parse::<Sport>().ok());
    let shown = query.records.as_deref().and_then(|s| s.parse::<Sport>().ok()).unwrap_or(Sport::Run);
    let me = caller.user.id;
    let (stats, weekly, periods, records) = tokio::try_join!(
        app.stride.stats.own(deadline, caller),
        app.stride.stats.weekly(deadline, caller, 12),
        app.stride.records.periods(deadline, caller, period, 12, sport),
        app.stride.records.records(deadline, me, me, shown),
    )?;
    let period = if period == Period::Year { "year" } else { "month" };
    let extras = views::DashboardExtras { records, periods, period, sport };
    Ok(page(&context, StatusCode::OK, views::dashboard(caller, &context.csrf, &stats, &weekly, &extras)))
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
