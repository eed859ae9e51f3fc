//! The feed.

use maud::{Markup, html};
use stride_domain::Photo;
use stride_services::Caller;

use super::*;

pub(crate) fn feed(
    caller: &Caller,
    csrf: &str,
    items: &[(stride_services::FeedItem, Vec<Photo>)],
    next: Option<String>,
) -> Markup {
    layout(
        "Feed",
        Some(caller),
        csrf,
        html! {
            h1 { "Feed" }
            (paged("feed", items, "Nothing yet: log an activity, or add friends.", next.map(|c| format!("/feed?cursor={c}")), |(item, thumbs)| {
                activity_card(&item.activity, Some(&item.author), thumbs)
            }))
        },
    )
}
