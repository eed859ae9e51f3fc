//! The page templates (maud, compiled into the binary). Every form field has a label, every
//! action is a real link or button (keyboard-usable), and the layout works at phone width.

use maud::{DOCTYPE, Markup, html};
use stride_domain::{Activity, Photo, Profile, Sport, Visibility};
use stride_services::{Caller, UserStats, WeeklyStats};

/// The frame of every page.
pub(crate) fn layout(title: &str, caller: Option<&Caller>, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Stride" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
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

pub(crate) fn login(csrf: &str, username: &str, message: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        csrf,
        html! {
            h1 { "Log in" }
            (notice(message))
            form.card method="post" action="/login" {
                (csrf_field(csrf))
                label for="username" { "Username" }
                input #username name="username" autocomplete="username" required maxlength="32" value=(username);
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required maxlength="128";
                button type="submit" { "Log in" }
            }
            p { "New here? " a href="/signup" { "Create an account" } }
        },
    )
}

pub(crate) fn signup(csrf: &str, username: &str, timezone: &str, message: Option<&str>) -> Markup {
    layout(
        "Sign up",
        None,
        csrf,
        html! {
            h1 { "Create your account" }
            (notice(message))
            form.card method="post" action="/signup" {
                (csrf_field(csrf))
                label for="username" { "Username (3–32 letters, digits or _)" }
                input #username name="username" autocomplete="username" required minlength="3" maxlength="32"
                    pattern="[A-Za-z0-9_]{3,32}" value=(username);
                label for="password" { "Password (at least 8 characters)" }
                input #password name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="128";
                label for="display_name" { "Display name (optional)" }
                input #display_name name="display_name" maxlength="64";
                label for="timezone" { "Time zone (it decides what \"today\" means for your streaks)" }
                (timezone_select("timezone", timezone, None))
                button type="submit" { "Sign up" }
            }
            p { "Already have an account? " a href="/login" { "Log in" } }
        },
    )
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

/// The weekly chart: inline SVG (no script, no library), with the numbers also in a table.
pub(crate) fn weekly_chart(weekly: &WeeklyStats) -> Markup {
    const HEIGHT: f64 = 150.0;
    let max = weekly.weeks.iter().map(|w| w.distance_m).fold(0.0_f64, f64::max);
    let step = 50.0;
    let width = step * weekly.weeks.len() as f64 + 10.0;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} 190")) role="img"
                aria-label=(format!("Distance per week, last {} weeks", weekly.weeks.len())) {
                @for (i, week) in weekly.weeks.iter().enumerate() {
                    @let height = if max > 0.0 { week.distance_m / max * HEIGHT } else { 0.0 };
                    @let x = 10.0 + step * i as f64;
                    rect.bar x=(x) y=(165.0 - height) width="38" height=(height)
                        data-week=(week.week_start) data-distance=(week.distance_m) {
                        title { (week.week_start.format("%d %b")) ": " (km(week.distance_m)) }
                    }
                    text x=(x + 19.0) y="182" text-anchor="middle" { (week.week_start.format("%d/%m")) }
                }
                line x1="5" y1="165" x2=(width) y2="165" {}
            }
            figcaption { "Distance per week (weeks start on Monday)" }
        }
        table.weeks {
            caption { "Weekly totals" }
            thead { tr { th scope="col" { "Week of" } th scope="col" { "Activities" } th scope="col" { "Distance" } th scope="col" { "Time" } } }
            tbody {
                @for week in weekly.weeks.iter().rev() {
                    tr { td { (week.week_start) } td { (week.activities) } td { (km(week.distance_m)) } td { (hms(week.duration_s)) } }
                }
            }
        }
    }
}

pub(crate) fn dashboard(caller: &Caller, csrf: &str, stats: &UserStats, weekly: &WeeklyStats) -> Markup {
    layout(
        "Dashboard",
        Some(caller),
        csrf,
        html! {
            h1 { "Hello, " (caller.user.display_name.as_str()) }
            p { a.button href="/activities/new" { "Log an activity" } }
            section.totals aria-label="Totals" {
                div { strong #total-activities { (stats.total_activities) } span { "activities" } }
                div { strong #total-distance { (km(stats.total_distance_m)) } span { "distance" } }
                div { strong #total-duration { (hms(stats.total_duration_s)) } span { "moving time" } }
                div { strong #current-streak { (stats.current_streak_days) } span { "day streak" } }
                div { strong #longest-streak { (stats.longest_streak_days) } span { "longest streak" } }
            }
            (weekly_chart(weekly))
        },
    )
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

pub(crate) fn activities(caller: &Caller, csrf: &str, items: &[Activity], next: Option<String>) -> Markup {
    layout(
        "Activities",
        Some(caller),
        csrf,
        html! {
            h1 { "Your activities" }
            p { a.button href="/activities/new" { "Log an activity" } }
            @if items.is_empty() { p { "Nothing logged yet." } }
            @for activity in items { (activity_card(activity, None, &[])) }
            @if let Some(cursor) = next { p { a.more href=(format!("/activities?cursor={cursor}")) { "Load more" } } }
        },
    )
}

/// The values an activity form shows.
#[derive(Debug, Default)]
pub(crate) struct ActivityForm {
    pub sport: String,
    pub title: String,
    pub started_at: String,
    pub timezone: String,
    /// The offset the activity was logged with, on the edit form ("keep" it by default).
    pub logged_offset: Option<String>,
    pub duration: String,
    pub distance_km: String,
    pub visibility: String,
    pub start_latlng: String,
}

pub(crate) fn activity_form(
    caller: &Caller,
    csrf: &str,
    action: &str,
    heading: &str,
    form: &ActivityForm,
    message: Option<&str>,
) -> Markup {
    layout(
        heading,
        Some(caller),
        csrf,
        html! {
            h1 { (heading) }
            (notice(message))
            form.card method="post" action=(action) {
                (csrf_field(csrf))
                label for="sport" { "Sport" }
                select #sport name="sport" {
                    @for sport in Sport::ALL { option value=(sport.as_str()) selected[sport.as_str() == form.sport] { (sport_label(sport)) } }
                }
                label for="title" { "Title (optional)" }
                input #title name="title" maxlength="200" value=(form.title);
                label for="started_at" { "Start (local date and time)" }
                input #started_at name="started_at" type="datetime-local" step="1" required value=(form.started_at);
                label for="timezone" { "Time zone of the start" }
                (timezone_select("timezone", &form.timezone, form.logged_offset.as_deref()))
                label for="duration" { "Moving time (minutes, or h:mm:ss)" }
                input #duration name="duration" required inputmode="numeric" pattern="[0-9:]+" value=(form.duration);
                label for="distance_km" { "Distance (km)" }
                input #distance_km name="distance_km" type="number" min="0" max="10000" step="0.001" required value=(form.distance_km);
                label for="visibility" { "Who can see it" }
                select #visibility name="visibility" {
                    @for visibility in Visibility::ALL {
                        option value=(visibility.as_str()) selected[visibility.as_str() == form.visibility] { (visibility.as_str()) }
                    }
                }
                label for="start_latlng" { "Start point (optional: latitude, longitude — only you see it; it looks up the weather)" }
                input #start_latlng name="start_latlng" placeholder="48.8566, 2.3522" value=(form.start_latlng);
                button type="submit" { "Save" }
            }
        },
    )
}

pub(crate) fn activity_detail(
    caller: &Caller,
    csrf: &str,
    activity: &Activity,
    photos: &[Photo],
    owner: bool,
    message: Option<&str>,
) -> Markup {
    let title = if activity.title.as_str().is_empty() {
        sport_label(activity.sport)
    } else {
        activity.title.as_str().to_owned()
    };
    let pace = (activity.distance.metres() > 0.0)
        .then(|| hms((f64::from(activity.duration.seconds()) / (activity.distance.metres() / 1000.0)).round() as u64));
    html! {
        (layout(&title, Some(caller), csrf, html! {
            h1 { (title) }
            (notice(message))
            dl.facts {
                dt { "Sport" } dd { (sport_label(activity.sport)) }
                dt { "Start" } dd { (when(activity)) }
                dt { "Distance" } dd #distance { (km(activity.distance.metres())) }
                dt { "Moving time" } dd { (hms(activity.duration.seconds().into())) }
                @if let Some(pace) = pace { dt { "Pace" } dd { (pace) " /km" } }
                dt { "Visibility" } dd { (activity.visibility.as_str()) }
                dt { "Weather" } dd #weather {
                    @match (&activity.weather, activity.weather_status) {
                        (Some(weather), _) => {
                            (format!("{:.1} °C, wind {:.1} m/s, {:.1} mm", weather.observation.temperature_c,
                                weather.observation.wind_speed_ms, weather.observation.precipitation_mm))
                        }
                        (None, stride_domain::WeatherStatus::Pending) => "looking it up…",
                        (None, stride_domain::WeatherStatus::Unavailable) => "unavailable",
                        (None, _) => "—",
                    }
                }
            }
            section aria-label="Photos" {
                h2 { "Photos" }
                @if photos.is_empty() { p { "No photos yet." } }
                div.thumbs {
                    @for photo in photos {
                        a href=(format!("/photos/{}/display", photo.id)) {
                            img.thumb src=(format!("/photos/{}/thumb", photo.id)) width=(photo.thumb.width)
                                height=(photo.thumb.height) alt=(format!("Photo {}", photo.position + 1));
                        }
                    }
                }
                @if owner {
                    form.card.upload method="post" enctype="multipart/form-data"
                        action=(format!("/activities/{}/photos?csrf={}", activity.id, csrf)) {
                        label for="photo" { "Add photos (JPEG, PNG or WebP; up to 10)" }
                        input #photo name="photo" type="file" multiple required accept="image/jpeg,image/png,image/webp";
                        progress hidden max="100" value="0" aria-label="Upload progress" {}
                        p.upload-status role="status" {}
                        button type="submit" { "Upload" }
                    }
                }
            }
            @if owner {
                p.actions {
                    a.button href=(format!("/activities/{}/edit", activity.id)) { "Edit" }
                    " "
                    a.button.danger href=(format!("/activities/{}/delete", activity.id)) { "Delete" }
                }
            }
        }))
    }
}

pub(crate) fn confirm_delete(caller: &Caller, csrf: &str, activity: &Activity) -> Markup {
    layout(
        "Delete activity",
        Some(caller),
        csrf,
        html! {
            h1 { "Delete this activity?" }
            (activity_card(activity, None, &[]))
            p { "It is removed with its photos, and your statistics are updated. This cannot be undone." }
            form.inline method="post" action=(format!("/activities/{}/delete", activity.id)) {
                (csrf_field(csrf))
                button.danger type="submit" { "Delete" }
                " "
                a href=(format!("/activities/{}", activity.id)) { "Cancel" }
            }
        },
    )
}

pub(crate) struct FriendsView<'a> {
    pub searched: Option<&'a str>,
    pub found: Option<&'a Profile>,
    pub incoming: &'a [stride_domain::FriendRequest],
    pub outgoing: &'a [stride_domain::FriendRequest],
    pub friends: &'a [stride_domain::Connection],
    pub blocked: &'a [stride_domain::Connection],
    pub message: Option<&'a str>,
}

fn post_button(csrf: &str, action: &str, label: &str, hidden: Option<(&str, &str)>) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            @if let Some((name, value)) = hidden { input type="hidden" name=(name) value=(value); }
            button type="submit" { (label) }
        }
    }
}

fn person(profile: &Profile) -> Markup {
    html! { span.person { (profile.display_name.as_str()) " " small { "@" (profile.username.as_str()) } } }
}

pub(crate) fn friends(caller: &Caller, csrf: &str, view: &FriendsView<'_>) -> Markup {
    layout(
        "Friends",
        Some(caller),
        csrf,
        html! {
            h1 { "Friends" }
            (notice(view.message))
            form.card method="get" action="/friends" role="search" {
                label for="username" { "Find someone by username" }
                input #username name="username" required maxlength="32" value=(view.searched.unwrap_or_default());
                button type="submit" { "Find" }
            }
            @if let Some(searched) = view.searched {
                @if let Some(found) = view.found {
                    div.card #search-result {
                        (person(found))
                        (post_button(csrf, "/friends/requests", "Send friend request", Some(("username", found.username.as_str()))))
                        (post_button(csrf, "/blocks", "Block", Some(("user_id", &found.id.to_string()))))
                    }
                } @else {
                    p #search-result { "No one goes by " strong { (searched) } "." }
                }
            }
            h2 { "Requests for you" }
            @if view.incoming.is_empty() { p { "None." } }
            ul.people #incoming {
                @for request in view.incoming {
                    li {
                        (person(&request.from))
                        (post_button(csrf, &format!("/friends/requests/{}/accept", request.id), "Accept", None))
                        (post_button(csrf, &format!("/friends/requests/{}/decline", request.id), "Decline", None))
                    }
                }
            }
            h2 { "Requests you sent" }
            @if view.outgoing.is_empty() { p { "None." } }
            ul.people #outgoing {
                @for request in view.outgoing {
                    li { (person(&request.to)) (post_button(csrf, &format!("/friends/requests/{}/cancel", request.id), "Cancel", None)) }
                }
            }
            h2 { "Your friends" }
            @if view.friends.is_empty() { p { "No friends yet: find someone above." } }
            ul.people #friends {
                @for friend in view.friends {
                    li {
                        (person(&friend.user))
                        (post_button(csrf, &format!("/friends/{}/remove", friend.user.id), "Unfriend", None))
                        (post_button(csrf, "/blocks", "Block", Some(("user_id", &friend.user.id.to_string()))))
                    }
                }
            }
            @if !view.blocked.is_empty() {
                h2 { "Blocked" }
                ul.people #blocked {
                    @for blocked in view.blocked {
                        li { (person(&blocked.user)) (post_button(csrf, &format!("/blocks/{}/remove", blocked.user.id), "Unblock", None)) }
                    }
                }
            }
        },
    )
}

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
            @if items.is_empty() { p { "Nothing yet: log an activity, or add friends." } }
            @for (item, thumbs) in items { (activity_card(&item.activity, Some(&item.author), thumbs)) }
            @if let Some(cursor) = next { p { a.more href=(format!("/feed?cursor={cursor}")) { "Load more" } } }
        },
    )
}
