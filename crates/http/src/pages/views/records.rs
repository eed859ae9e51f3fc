//! Best efforts and records on the pages: the dashboard's records table and month/year chart,
//! and an activity's efforts with the ones among the three best marked.

use maud::{Markup, html};
use stride_domain::Sport;
use stride_services::{EffortView, PeriodStats, Records};

use super::*;

/// "5 km", "1 mile", "half marathon": how a distance is named.
pub(crate) fn distance_name(mm: i64) -> String {
    match mm {
        1_609_344 => "1 mile".into(),
        21_097_500 => "half marathon".into(),
        42_195_000 => "marathon".into(),
        mm if mm < 1_000_000 => format!("{} m", mm / 1000),
        mm => format!("{} km", mm / 1_000_000),
    }
}

fn ordinal(rank: u32) -> &'static str {
    match rank {
        1 => "Best",
        2 => "2nd best",
        _ => "3rd best",
    }
}

fn tenths(ds: i64) -> String {
    let whole = (ds / 10).max(0) as u64;
    format!("{}.{}", hms(whole), ds.rem_euclid(10))
}

/// An activity's efforts; those among the three best of what the reader may see say so.
pub(crate) fn efforts_section(efforts: &[EffortView]) -> Markup {
    html! {
        @if !efforts.is_empty() {
            section.efforts aria-label="Best efforts" {
                h2 { "Best efforts" }
                table {
                    thead { tr { th scope="col" { "Distance" } th scope="col" { "Time" } th scope="col" { "" } } }
                    tbody {
                        @for view in efforts {
                            tr {
                                td { (distance_name(view.effort.distance_mm)) }
                                td { (tenths(view.effort.elapsed_ds)) }
                                td.rank {
                                    @if let Some(rank) = view.rank {
                                        strong { (ordinal(rank)) " " (distance_name(view.effort.distance_mm)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

const SPORTS: [Sport; 6] = [Sport::Run, Sport::Ride, Sport::Swim, Sport::Walk, Sport::Hike, Sport::Other];

/// The dashboard's records table for one sport, with a sport picker.
pub(crate) fn records_table(records: &Records, period: &str, sport_filter: Option<Sport>) -> Markup {
    html! {
        section.records aria-label="Records" {
            h2 { "Records" }
            form.inline method="get" action="/" {
                label for="records" { "Sport" }
                select #records name="records" {
                    @for sport in SPORTS {
                        option value=(sport.as_str()) selected[sport == records.sport] { (sport_label(sport)) }
                    }
                }
                input type="hidden" name="period" value=(period);
                @if let Some(sport) = sport_filter { input type="hidden" name="sport" value=(sport.as_str()); }
                button type="submit" { "Show" }
            }
            @if records.items.is_empty() {
                p { "No best efforts yet: import a track." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Distance" } th scope="col" { "Best" } th scope="col" { "2nd" } th scope="col" { "3rd" } } }
                    tbody {
                        @for (mm, best) in &records.items {
                            tr {
                                th scope="row" { (distance_name(*mm)) }
                                @for place in 0..3 {
                                    td {
                                        @if let Some(effort) = best.get(place) {
                                            a href=(format!("/activities/{}", effort.activity_id)) { (tenths(effort.elapsed_ds)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Distance per month or year (inline SVG, the numbers also in a table), with its filters.
pub(crate) fn periods_chart(stats: &PeriodStats, period: &str, sport: Option<Sport>, records: Sport) -> Markup {
    const HEIGHT: f64 = 150.0;
    let max = stats.periods.iter().map(|p| p.distance_m).fold(0.0_f64, f64::max);
    let step = 50.0;
    let width = step * stats.periods.len() as f64 + 10.0;
    let label = |start: &chrono::NaiveDate| {
        if period == "year" { start.format("%Y").to_string() } else { start.format("%m/%y").to_string() }
    };
    html! {
        section.periods aria-label="Totals by period" {
            h2 { "Totals by " (period) }
            form.inline method="get" action="/" {
                label for="period" { "Period" }
                select #period name="period" {
                    option value="month" selected[period == "month"] { "Month" }
                    option value="year" selected[period == "year"] { "Year" }
                }
                label for="sport" { "Sport" }
                select #sport name="sport" {
                    option value="" selected[sport.is_none()] { "All sports" }
                    @for s in SPORTS { option value=(s.as_str()) selected[sport == Some(s)] { (sport_label(s)) } }
                }
                input type="hidden" name="records" value=(records.as_str());
                button type="submit" { "Show" }
            }
            figure.chart.by-period {
                svg viewBox=(format!("0 0 {width} 190")) role="img" aria-label=(format!("Distance per {period}")) {
                    @for (i, p) in stats.periods.iter().enumerate() {
                        @let height = if max > 0.0 { p.distance_m / max * HEIGHT } else { 0.0 };
                        @let x = 10.0 + step * i as f64;
                        rect.bar x=(x) y=(165.0 - height) width="38" height=(height) data-start=(p.start) data-distance=(p.distance_m) {
                            title { (label(&p.start)) ": " (km(p.distance_m)) }
                        }
                        text x=(x + 19.0) y="182" text-anchor="middle" { (label(&p.start)) }
                    }
                    line x1="5" y1="165" x2=(width) y2="165" {}
                }
            }
            table.period-totals {
                thead { tr { th scope="col" { "From" } th scope="col" { "Activities" } th scope="col" { "Distance" } th scope="col" { "Time" } th scope="col" { "Climb" } } }
                tbody {
                    @for p in stats.periods.iter().rev() {
                        tr { td { (p.start) } td { (p.activities) } td { (km(p.distance_m)) } td { (hms(p.duration_s)) } td { (format!("{:.0} m", p.elevation_gain_m)) } }
                    }
                }
            }
        }
    }
}
