//! Best efforts, records and totals by period (README "Best efforts and records").

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use stride_domain::{Extreme, RankedEffort, StartedAt};
use utoipa::{IntoParams, ToSchema};

fn seconds(tenths: i64) -> f64 {
    tenths as f64 / 10.0
}

fn metres(mm: i64) -> f64 {
    mm as f64 / 1000.0
}

fn start(at: &StartedAt) -> String {
    at.as_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// One effort of the activity: the fastest stretch covering `distance_m`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BestEffortBody {
    pub distance_m: f64,
    /// Elapsed time (stops included), to 0.1 s.
    pub elapsed_s: f64,
    /// From the track's first timed point, to 0.1 s.
    pub start_offset_s: f64,
    pub end_offset_s: f64,
    /// 1–3 when among the three best of the sport and distance that you may see, else null.
    pub rank: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BestEffortsBody {
    /// The distances of the activity's sport that its track covers, shortest first.
    pub items: Vec<BestEffortBody>,
}

impl From<&[stride_services::EffortView]> for BestEffortsBody {
    fn from(views: &[stride_services::EffortView]) -> Self {
        let items = views
            .iter()
            .map(|v| BestEffortBody {
                distance_m: metres(v.effort.distance_mm),
                elapsed_s: seconds(v.effort.elapsed_ds),
                start_offset_s: seconds(v.effort.start_ds),
                end_offset_s: seconds(v.effort.end_ds),
                rank: v.rank,
            })
            .collect();
        Self { items }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// Required: run, ride, swim, walk, hike or other.
    #[param(value_type = String, required = true)]
    pub sport: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordEffortBody {
    pub elapsed_s: f64,
    pub activity_id: String,
    pub started_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordBody {
    pub distance_m: f64,
    /// Up to three, fastest first (equal tenths: the earlier start first).
    pub best: Vec<RecordEffortBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LongestBody {
    pub distance_m: f64,
    pub activity_id: String,
    pub started_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClimbBody {
    pub elevation_gain_m: f64,
    pub activity_id: String,
    pub started_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsBody {
    pub sport: String,
    /// Distances of the sport with any effort, shortest first.
    pub items: Vec<RecordBody>,
    pub longest: Option<LongestBody>,
    pub biggest_climb: Option<ClimbBody>,
}

fn ranked(effort: &RankedEffort) -> RecordEffortBody {
    RecordEffortBody {
        elapsed_s: seconds(effort.elapsed_ds),
        activity_id: effort.activity_id.to_string(),
        started_at: start(&effort.started_at),
    }
}

impl From<&stride_services::Records> for RecordsBody {
    fn from(records: &stride_services::Records) -> Self {
        let extreme = |e: &Extreme| (e.value, e.activity_id.to_string(), start(&e.started_at));
        Self {
            sport: records.sport.as_str().to_owned(),
            items: records
                .items
                .iter()
                .map(|(mm, best)| RecordBody { distance_m: metres(*mm), best: best.iter().map(ranked).collect() })
                .collect(),
            longest: records.longest.as_ref().map(extreme).map(|(distance_m, activity_id, started_at)| LongestBody {
                distance_m,
                activity_id,
                started_at,
            }),
            biggest_climb: records.biggest_climb.as_ref().map(extreme).map(
                |(elevation_gain_m, activity_id, started_at)| ClimbBody { elevation_gain_m, activity_id, started_at },
            ),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodsQuery {
    /// `month` (default) or `year`.
    #[param(value_type = String, required = false)]
    pub period: Option<String>,
    /// One sport; all sports when absent.
    #[param(value_type = String, required = false)]
    pub sport: Option<String>,
    /// How many periods, the current one last: 1–120, default 12.
    #[param(value_type = u32, required = false)]
    pub count: Option<String>,
}

/// One period's totals; an activity counts in the period of its local date.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodBody {
    /// The period's first day, `YYYY-MM-DD`.
    pub start: String,
    pub activities: u64,
    pub distance_m: f64,
    pub duration_s: u64,
    /// Manual activities add 0.
    pub elevation_gain_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodsBody {
    /// Oldest first, empty periods included; the last holds today in your time zone.
    pub periods: Vec<PeriodBody>,
    pub as_of: String,
}

impl From<&stride_services::PeriodStats> for PeriodsBody {
    fn from(stats: &stride_services::PeriodStats) -> Self {
        Self {
            periods: stats
                .periods
                .iter()
                .map(|p| PeriodBody {
                    start: p.start.format("%Y-%m-%d").to_string(),
                    activities: p.activities,
                    distance_m: p.distance_m,
                    duration_s: p.duration_s,
                    elevation_gain_m: p.elevation_gain_m,
                })
                .collect(),
            as_of: stats.as_of.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}
