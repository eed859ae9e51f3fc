//! Signing in and up.

use maud::{Markup, html};

use super::*;

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
