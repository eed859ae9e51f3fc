//! The page templates (maud, compiled into the binary), one module per resource like the API's
//! `routes/`; this file holds the frame and the pieces they share. Every form field has a label,
//! every action is a real link or button (keyboard-usable), and the layout works at phone width.

mod activities;
mod auth;
mod dashboard;
mod feed;
mod friends;
mod records;
mod tracks;

pub(crate) use activities::{
    ActivityForm, ElevationProfile, activities, activity_detail, activity_form, confirm_delete,
};
pub(crate) use auth::{login, signup};
pub(crate) use dashboard::{DashboardExtras, dashboard};
pub(crate) use feed::feed;
pub(crate) use friends::{FriendsView, Listed, friends};
pub(crate) use records::{efforts_section, periods_chart, records_table};
pub(crate) use tracks::{
    IMPORT_ITEMS_PER_PAGE, elevation_svg, import_detail, imports, privacy, route_svg, track_facts,
};

use maud::{DOCTYPE, Markup, html};
use stride_domain::{Activity, Photo, Profile, Sport};
use stride_services::Caller;

/// The frame of every page.
pub(crate) fn layout(title: &str, caller: Option<&Caller>, csrf: &str, body: Markup) -> Markup {
    framed(title, caller, csrf, html! {}, body)
}

/// The frame with `head` added to the document's head (a page that refreshes itself).
pub(crate) fn framed(title: &str, caller: Option<&Caller>, csrf: &str, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Stride" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
                (head)
            }
            body {
                header.top {
                    a.brand href="/" { "Stride" }
                    @if let Some(caller) = caller {
                        nav aria-label="Main" {
                            a href="/" { "Dashboard" }
                            a href="/activities" { "Activities" }
                            a href="/feed" { "Feed" }
                            a href="/friends" { "Friends" }
                            a href="/imports" { "Import" }
                            a href="/settings/privacy" { "Privacy" }
                        }
                        form.inline method="post" action="/logout" {
                            (csrf_field(csrf))
                            span.who { (caller.user.display_name.as_str()) }
                            button type="submit" { "Log out" }
                        }
                    } @else {
                        nav aria-label="Main" {
                            a href="/login" { "Log in" }
                            a href="/signup" { "Sign up" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

pub(crate) fn error_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        None,
        "",
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to Stride" } }
        },
    )
}

pub(crate) fn notice(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p.error role="alert" { (message) }
        }
    }
}

pub(crate) fn timezone_select(name: &str, selected: &str, keep: Option<&str>) -> Markup {
    html! {
        select id=(name) name=(name) data-detect-timezone[keep.is_none()] {
            @if let Some(keep) = keep {
                option value="keep" selected { "As logged (" (keep) ")" }
            }
            @for zone in stride_domain::TimeZone::names() {
                option value=(zone) selected[keep.is_none() && zone == selected] { (zone) }
            }
        }
    }
}

pub(crate) fn km(metres: f64) -> String {
    format!("{:.2} km", metres / 1000.0)
}

pub(crate) fn hms(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

fn sport_label(sport: Sport) -> String {
    let name = sport.as_str();
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn when(activity: &Activity) -> String {
    activity.started_at.as_datetime().format("%a %d %b %Y, %H:%M").to_string()
}

pub(crate) fn activity_card(activity: &Activity, author: Option<&Profile>, thumbs: &[Photo]) -> Markup {
    html! {
        article.activity {
            h2 {
                a href=(format!("/activities/{}", activity.id)) {
                    @if activity.title.as_str().is_empty() { (sport_label(activity.sport)) } @else { (activity.title.as_str()) }
                }
            }
            @if let Some(author) = author {
                p.author { (author.display_name.as_str()) " · @" (author.username.as_str()) }
            }
            p.meta {
                (sport_label(activity.sport)) " · " (when(activity)) " · " (km(activity.distance.metres()))
                " · " (hms(activity.duration.seconds().into())) " · " (activity.visibility.as_str())
            }
            @if let Some(track) = &activity.track {
                (tracks::route_svg(track, 160, 100, "Route thumbnail"))
            }
            @if !thumbs.is_empty() {
                div.thumbs {
                    @for photo in thumbs {
                        a href=(format!("/photos/{}/display", photo.id)) {
                            img src=(format!("/photos/{}/thumb", photo.id)) width=(photo.thumb.width)
                                height=(photo.thumb.height) alt="Photo of the activity" loading="lazy";
                        }
                    }
                }
            }
        }
    }
}

/// The one body of every paged list (activities, the feed, friends, requests, blocks): what to
/// say when the page is empty, the items under one id, and a link to the next page.
pub(crate) fn paged<T>(
    id: &str,
    items: &[T],
    empty: &str,
    next: Option<String>,
    item: impl Fn(&T) -> Markup,
) -> Markup {
    html! {
        @if items.is_empty() { p { (empty) } }
        ul.listing id=(id) {
            @for each in items { li { (item(each)) } }
        }
        @if let Some(href) = next { p { a.more href=(href) { "Load more" } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paged_list_shows_its_items_or_says_it_is_empty_and_links_the_next_page_only_when_there_is_one() {
        let render = |items: &[&str], next: Option<String>| {
            paged("friends", items, "No friends yet.", next, |name| html! { span { (name) } }).into_string()
        };
        let empty = render(&[], None);
        assert!(empty.contains("No friends yet.") && !empty.contains("Load more"), "{empty}");
        let more = render(&["ada", "grace"], Some("/friends?friends=abc".into()));
        assert!(
            more.contains(
                r#"<ul class="listing" id="friends"><li><span>ada</span></li><li><span>grace</span></li></ul>"#
            ),
            "{more}"
        );
        assert!(more.contains(r#"href="/friends?friends=abc""#) && !more.contains("No friends yet."), "{more}");
        let last = render(&["ada"], None);
        assert!(!last.contains("Load more"), "{last}");
    }
}
