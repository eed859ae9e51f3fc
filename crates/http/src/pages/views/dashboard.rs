//! The dashboard: totals, streaks, the weekly chart, totals by month or year, and records.

use maud::{Markup, html};
use stride_services::{Caller, UserStats, WeeklyStats};

/// The records and period parts of the dashboard, as asked for in its query.
pub(crate) struct DashboardExtras {
    pub records: stride_services::Records,
    pub periods: stride_services::PeriodStats,
    pub period: &'static str,
    pub sport: Option<stride_domain::Sport>,
}

use super::*;

/// The weekly chart: inline SVG (no script, no library), with the numbers also in a table.
pub(crate) fn weekly_chart(weekly: &WeeklyStats) -> Markup {
    const HEIGHT: f64 = 150.0;
    let max = weekly.weeks.iter().map(|w| w.distance_m).fold(0.0_f64, f64::max);
    let step = 50.0;
    let width = step * weekly.weeks.len() as f64 + 10.0;
    html! {
        figure.chart.weekly {
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

pub(crate) fn dashboard(
    caller: &Caller,
    csrf: &str,
    stats: &UserStats,
    weekly: &WeeklyStats,
    extras: &DashboardExtras,
) -> Markup {
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
            (periods_chart(&extras.periods, extras.period, extras.sport, extras.records.sport))
            (records_table(&extras.records, extras.period, extras.sport))
        },
    )
}
