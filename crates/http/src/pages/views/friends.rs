//! Friends: search, requests both ways, friends and blocks.

use maud::{Markup, html};
use stride_domain::Profile;
use stride_services::Caller;

use super::*;

/// One page of a list on the friends page, and the link to its next page.
pub(crate) struct Listed<'a, T> {
    pub items: &'a [T],
    pub next: Option<String>,
}

pub(crate) struct FriendsView<'a> {
    pub searched: Option<&'a str>,
    pub found: Option<&'a Profile>,
    pub incoming: Listed<'a, stride_domain::FriendRequest>,
    pub outgoing: Listed<'a, stride_domain::FriendRequest>,
    pub friends: Listed<'a, stride_domain::Connection>,
    pub blocked: Listed<'a, stride_domain::BlockedUser>,
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
            (paged("incoming", view.incoming.items, "None.", view.incoming.next.clone(), |request| html! {
                (person(&request.from))
                (post_button(csrf, &format!("/friends/requests/{}/accept", request.id), "Accept", None))
                (post_button(csrf, &format!("/friends/requests/{}/decline", request.id), "Decline", None))
            }))
            h2 { "Requests you sent" }
            (paged("outgoing", view.outgoing.items, "None.", view.outgoing.next.clone(), |request| html! {
                (person(&request.to))
                (post_button(csrf, &format!("/friends/requests/{}/cancel", request.id), "Cancel", None))
            }))
            h2 { "Your friends" }
            (paged("friends", view.friends.items, "No friends yet: find someone above.", view.friends.next.clone(), |friend| html! {
                (person(&friend.user))
                (post_button(csrf, &format!("/friends/{}/remove", friend.user.id), "Unfriend", None))
                (post_button(csrf, "/blocks", "Block", Some(("user_id", &friend.user.id.to_string()))))
            }))
            @if !view.blocked.items.is_empty() || view.blocked.next.is_some() {
                h2 { "Blocked" }
                (paged("blocked", view.blocked.items, "None.", view.blocked.next.clone(), |blocked| html! {
                    @match &blocked.profile {
                        Some(profile) => (person(profile)),
                        None => span.who { "Someone who has blocked you too" },
                    }
                    (post_button(csrf, &format!("/blocks/{}/remove", blocked.id), "Unblock", None))
                }))
            }
        },
    )
}
