//! Tracks on the pages: the route drawn as an inline SVG from its polyline (no map tiles, no
//! request to anyone: the CSP stays `'self'`), the elevation profile, splits and heart rate;
//! the import pages; and the privacy zones page.

use std::fmt::Write;

use maud::{Markup, html};
use stride_domain::{Import, ImportItem, PrivacyZone, Sport, TrackSummary, Visibility};
use stride_services::{Caller, decode_polyline};

use super::*;

/// The route of `track` in a `width` × `height` box, north up, with its aspect kept.
pub(crate) fn route_svg(track: &TrackSummary, width: u32, height: u32, label: &str) -> Markup {
    let points = track.polyline.as_deref().and_then(decode_polyline).unwrap_or_default();
    let Some(bbox) = track.bbox.filter(|_| points.len() >= 2) else { return html! {} };
    // The same local projection as the polyline's: x = Δλ·cos φ₀, y = Δφ.
    let cos0 = ((bbox[0] + bbox[2]) / 2.0).to_radians().cos();
    let (span_x, span_y) = (((bbox[3] - bbox[1]) * cos0).max(1e-9), (bbox[2] - bbox[0]).max(1e-9));
    let pad = 4.0;
    let scale = ((f64::from(width) - 2.0 * pad) / span_x).min((f64::from(height) - 2.0 * pad) / span_y);
    let (offset_x, offset_y) = ((f64::from(width) - span_x * scale) / 2.0, (f64::from(height) - span_y * scale) / 2.0);
    let mut path = String::with_capacity(points.len() * 14);
    for (lat, lon) in points {
        let x = offset_x + (lon - bbox[1]) * cos0 * scale;
        let y = offset_y + (bbox[2] - lat) * scale;
        let _ = write!(path, "{x:.1},{y:.1} ");
    }
    html! {
        svg.route viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height) role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            polyline points=(path.trim_end()) fill="none" stroke="#d9480f" stroke-width="2.5"
                stroke-linejoin="round" stroke-linecap="round" {}
        }
    }
}

/// Elevation against distance, from the `distance` and `altitude` streams.
pub(crate) fn elevation_svg(distance: &[f64], altitude: &[Option<f64>]) -> Markup {
    let samples: Vec<(f64, f64)> = distance.iter().zip(altitude).filter_map(|(&d, &a)| a.map(|a| (d, a))).collect();
    if samples.len() < 2 {
        return html! {};
    }
    let (width, height, pad) = (600.0, 140.0, 6.0);
    let (min_d, max_d) = (samples[0].0, samples[samples.len() - 1].0.max(samples[0].0 + 1e-9));
    let (min_e, max_e) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, e)| (lo.min(e), hi.max(e)));
    let span_e = (max_e - min_e).max(1.0);
    let mut path = format!("{pad:.1},{:.1} ", height - pad);
    for &(d, e) in &samples {
        let x = pad + (d - min_d) / (max_d - min_d) * (width - 2.0 * pad);
        let y = height - pad - (e - min_e) / span_e * (height - 2.0 * pad);
        let _ = write!(path, "{x:.1},{y:.1} ");
    }
    let _ = write!(path, "{:.1},{:.1}", width - pad, height - pad);
    html! {
        figure.elevation {
            svg viewBox=(format!("0 0 {width} {height}")) role="img"
                aria-label=(format!("Elevation profile, {min_e:.0} to {max_e:.0} m")) xmlns="http://www.w3.org/2000/svg" {
                polygon points=(path) fill="#e9ecef" stroke="#495057" stroke-width="1.5" {}
            }
            figcaption { (format!("Elevation {min_e:.0}–{max_e:.0} m")) }
        }
    }
}

/// The figures only a track has: elapsed time, climb, heart rate, splits, and the download.
pub(crate) fn track_facts(activity_id: &str, track: &TrackSummary) -> Markup {
    html! {
        dl.facts #track {
            dt { "Elapsed time" } dd { (hms(track.elapsed_s.max(0) as u64)) }
            @if let (Some(gain), Some(loss)) = (track.elevation_gain_m, track.elevation_loss_m) {
                dt { "Climb" } dd { (format!("+{gain:.0} m / −{loss:.0} m")) }
            }
            @if let (Some(avg), Some(max)) = (track.avg_hr, track.max_hr) {
                dt { "Heart rate" } dd #heart-rate { (avg) " bpm average, " (max) " max" }
            }
        }
        @if !track.splits.is_empty() {
            table.splits {
                caption { "Splits" }
                thead { tr { th scope="col" { "km" } th scope="col" { "Distance" } th scope="col" { "Time" } } }
                tbody {
                    @for split in &track.splits {
                        tr {
                            td { (split.km) }
                            td { (km(split.distance_m)) }
                            td { (hms(split.elapsed_s.round() as u64)) }
                        }
                    }
                }
            }
        }
        p { a.button href=(format!("/activities/{activity_id}/export.gpx")) download { "Download GPX" } }
    }
}

fn import_summary(import: &Import) -> String {
    let total = import.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    format!(
        "{}: {} of {total} imported, {} duplicate, {} failed, {} cancelled",
        import.state, import.imported, import.duplicate, import.failed, import.cancelled
    )
}

pub(crate) fn imports(caller: &Caller, csrf: &str, recent: &[Import], message: Option<&str>) -> Markup {
    layout(
        "Import",
        Some(caller),
        csrf,
        html! {
            h1 { "Import files" }
            (notice(message))
            form.card.upload method="post" enctype="multipart/form-data" action=(format!("/imports?csrf={csrf}")) {
                label for="file" {
                    "GPX, TCX or FIT files (gzipped too; up to 20, 25 MiB each), or one zip archive: \
                     watch files zipped up, or Strava's \"Download your data\" export whole"
                }
                input #file name="file" type="file" multiple required accept=".gpx,.tcx,.fit,.gz,.zip";
                label for="sport" { "Sport, for files that name none" }
                select #sport name="sport" {
                    @for sport in Sport::ALL { option value=(sport.as_str()) selected[sport == Sport::Other] { (sport_label(sport)) } }
                }
                label for="visibility" { "Who can see them" }
                select #visibility name="visibility" {
                    @for visibility in Visibility::ALL {
                        option value=(visibility.as_str()) selected[visibility == Visibility::Friends] { (visibility.as_str()) }
                    }
                }
                progress hidden max="100" value="0" aria-label="Upload progress" {}
                p.upload-status role="status" {}
                button type="submit" { "Import" }
            }
            h2 { "Recent imports" }
            (paged("imports", recent, "Nothing imported yet.", None, |import| html! {
                a href=(format!("/imports/{}", import.id)) { (import.created_at.format("%d %b %Y, %H:%M UTC")) }
                " — " (import_summary(import))
            }))
        },
    )
}

/// Items per page of an import's page.
pub(crate) const IMPORT_ITEMS_PER_PAGE: u32 = 100;

/// Rate and time left, while they are known.
fn import_pace(import: &Import) -> Option<String> {
    let rate = import.rate_per_s.filter(|_| import.state.is_active())?;
    let eta = import.eta_s().map_or_else(String::new, |eta| format!(", about {} left", duration_words(eta)));
    Some(format!("{rate:.1} items/s{eta}"))
}

fn duration_words(seconds: f64) -> String {
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

pub(crate) fn import_detail(caller: &Caller, csrf: &str, import: &Import, items: &[ImportItem], from: u32) -> Markup {
    let next = (items.len() as u32 == IMPORT_ITEMS_PER_PAGE).then(|| from + IMPORT_ITEMS_PER_PAGE);
    // While it runs, the page reloads itself every two seconds (no script needed).
    let head = html! { @if import.state.is_active() { meta http-equiv="refresh" content="2"; } };
    framed(
        "Import",
        Some(caller),
        csrf,
        head,
        html! {
                h1 { "Import" }
                p #import-state role="status" { (import_summary(import)) }
                @if let Some(total) = import.total.filter(|total| *total > 0) {
                    progress #import-progress max=(total) value=(import.settled()) aria-label="Import progress" {
                        (import.settled()) " of " (total)
                    }
                } @else if import.state.is_active() {
                    p { "Reading the archive's contents…" }
                }
                @if let Some(pace) = import_pace(import) { p #import-pace { (pace) } }
                @if let Some(error) = &import.error { p.error role="alert" { (error.message) } }
                ol.listing #import-items start=(from + 1) {
                    @for item in items {
                        li data-state=(item.state.as_str()) {
                            strong { (item.name) } " — " (item.state.as_str())
                            @if let Some(activity) = item.activity_id {
                                " · " a href=(format!("/activities/{activity}")) { "the activity" }
                            }
                            @if let Some(error) = &item.error { " · " span.error { (error.code) ": " (error.message) } }
                            @for warning in &item.warnings { br; small.warning { (warning.code) ": " (warning.message) } }
                        }
                    }
                }
                nav.pager {
                    @if from > 0 {
                        a #import-previous href=(format!("/imports/{}?from={}", import.id, from.saturating_sub(IMPORT_ITEMS_PER_PAGE))) { "Previous items" }
                        " "
                    }
                    @if let Some(next) = next {
                        a #import-next href=(format!("/imports/{}?from={next}", import.id)) { "Next items" }
                    }
                }
                @if import.state.is_active() {
                    form.inline method="post" action=(format!("/imports/{}/cancel", import.id)) {
                        (csrf_field(csrf))
                        button.danger type="submit" { "Cancel what has not started" }
                    }
                }
                p { a href="/imports" { "Import more" } }
        },
    )
}

pub(crate) fn privacy(caller: &Caller, csrf: &str, zones: &[PrivacyZone], message: Option<&str>) -> Markup {
    layout(
        "Privacy zones",
        Some(caller),
        csrf,
        html! {
            h1 { "Privacy zones" }
            p { "Points of your tracks inside a zone are never shown to anyone else: not on maps, in streams \
                 or in downloads. Totals stay. A zone applies to every activity at once." }
            (notice(message))
            (paged("zones", zones, "No zones yet.", None, |zone| html! {
                (format!("{:.5}, {:.5} — {:.0} m", zone.lat, zone.lon, zone.radius_m))
                form.inline method="post" action=(format!("/settings/privacy/{}/delete", zone.id)) {
                    (csrf_field(csrf))
                    " " button.danger type="submit" { "Remove" }
                }
            }))
            @if zones.len() < PrivacyZone::MAX_PER_USER {
                form.card method="post" action="/settings/privacy" {
                    (csrf_field(csrf))
                    label for="lat" { "Latitude" }
                    input #lat name="lat" type="number" step="any" min="-90" max="90" required;
                    label for="lon" { "Longitude" }
                    input #lon name="lon" type="number" step="any" min="-180" max="180" required;
                    label for="radius_m" { "Radius (200 to 2,000 m)" }
                    input #radius_m name="radius_m" type="number" min="200" max="2000" step="1" value="500" required;
                    button type="submit" { "Add zone" }
                }
            }
        },
    )
}
