//! Activities: the list, the form, the detail page and the delete confirmation.

use maud::{Markup, html};
use stride_domain::{Activity, Photo, Sport, Visibility};
use stride_services::Caller;

use super::*;

pub(crate) fn activities(caller: &Caller, csrf: &str, items: &[Activity], next: Option<String>) -> Markup {
    layout(
        "Activities",
        Some(caller),
        csrf,
        html! {
            h1 { "Your activities" }
            p { a.button href="/activities/new" { "Log an activity" } }
            (paged("activities", items, "Nothing logged yet.", next.map(|c| format!("/activities?cursor={c}")), |activity| {
                activity_card(activity, None, &[])
            }))
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

/// What a track adds to the detail page: the elevation profile's samples.
#[derive(Debug, Default)]
pub(crate) struct ElevationProfile {
    pub distance: Vec<f64>,
    pub altitude: Vec<Option<f64>>,
}

pub(crate) fn activity_detail(
    caller: &Caller,
    csrf: &str,
    activity: &Activity,
    photos: &[Photo],
    owner: bool,
    profile: &ElevationProfile,
    efforts: &[stride_services::EffortView],
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
            @if let Some(track) = &activity.track {
                (route_svg(track, 600, 360, "Route map"))
            }
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
            @if let Some(description) = &activity.description { p.description { (description.as_str()) } }
            @if let Some(track) = &activity.track {
                (elevation_svg(&profile.distance, &profile.altitude))
                (track_facts(&activity.id.to_string(), track))
                (super::efforts_section(efforts))
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
