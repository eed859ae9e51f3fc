//! The shapes of tracks, imports and privacy zones in the API.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use stride_domain::{Import, ImportItem, PrivacyZone, Problem, TrackSummary};
use utoipa::{IntoParams, ToSchema};

/// One kilometre split; the last may be partial (its own `distance_m`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SplitBody {
    pub km: u32,
    pub distance_m: f64,
    /// Seconds, to 0.1 s, paused time included.
    pub elapsed_s: f64,
}

/// A recorded track's figures; README "Track metrics" defines each.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackBody {
    pub points: u32,
    pub elapsed_s: i64,
    pub moving_s: i64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    pub avg_hr: Option<u32>,
    pub max_hr: Option<u32>,
    /// Google's encoded polyline (precision 5) of the simplified route; to anyone but the
    /// owner, without the points inside the owner's privacy zones.
    pub polyline: Option<String>,
    pub polyline_tolerance_m: Option<f64>,
    /// `[min_lat, min_lon, max_lat, max_lon]`.
    #[schema(value_type = Option<Vec<f64>>)]
    pub bbox: Option<[f64; 4]>,
    pub splits: Vec<SplitBody>,
}

impl From<&TrackSummary> for TrackBody {
    fn from(t: &TrackSummary) -> Self {
        Self {
            points: t.points,
            elapsed_s: t.elapsed_s,
            moving_s: t.moving_s,
            distance_m: t.distance_m,
            elevation_gain_m: t.elevation_gain_m,
            elevation_loss_m: t.elevation_loss_m,
            avg_hr: t.avg_hr,
            max_hr: t.max_hr,
            polyline: t.polyline.clone(),
            polyline_tolerance_m: t.polyline_tolerance_m,
            bbox: t.bbox,
            splits: t
                .splits
                .iter()
                .map(|s| SplitBody { km: s.km, distance_m: s.distance_m, elapsed_s: s.elapsed_s })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    pub code: String,
    pub message: String,
}

impl From<&Problem> for ProblemBody {
    fn from(p: &Problem) -> Self {
        Self { code: p.code.clone(), message: p.message.clone() }
    }
}

/// An import of track files.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportBody {
    pub id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    #[schema(example = "queued")]
    pub state: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// Items, once known.
    pub total: Option<u32>,
    pub imported: u32,
    pub duplicate: u32,
    pub failed: u32,
    pub cancelled: u32,
    /// Why the import as a whole failed (`invalid_archive`, `too_many_items`, `too_large`,
    /// `import_failed`); `null` otherwise.
    pub error: Option<ProblemBody>,
    /// Items per second while running (over the running attempt); `null` otherwise.
    pub rate_per_s: Option<f64>,
    /// Seconds until the last item at that rate, while running with `total` known; `null`
    /// otherwise.
    pub eta_s: Option<f64>,
}

impl From<&Import> for ImportBody {
    fn from(i: &Import) -> Self {
        Self {
            id: i.id.to_string(),
            state: i.state.as_str().to_owned(),
            created_at: i.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            finished_at: i.finished_at.map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            total: i.total,
            imported: i.imported,
            duplicate: i.duplicate,
            failed: i.failed,
            cancelled: i.cancelled,
            error: i.error.as_ref().map(ProblemBody::from),
            rate_per_s: i
                .rate_per_s
                .filter(|_| i.state == stride_domain::ImportState::Running)
                .map(|r| (r * 100.0).round() / 100.0),
            eta_s: i.eta_s(),
        }
    }
}

/// One file of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportItemBody {
    /// The file's position in the upload, from 0.
    pub index: u32,
    pub name: String,
    /// `queued`, `imported`, `duplicate`, `failed` or `cancelled`.
    pub state: String,
    /// The activity made (`imported`) or repeated (`duplicate`).
    pub activity_id: Option<String>,
    /// `invalid_file`, `no_track`, `too_large`, `missing_file`, `unsafe_entry` or
    /// `invalid_row`, with a message.
    pub error: Option<ProblemBody>,
    pub warnings: Vec<ProblemBody>,
}

impl From<&ImportItem> for ImportItemBody {
    fn from(i: &ImportItem) -> Self {
        Self {
            index: i.index,
            name: i.name.clone(),
            state: i.state.as_str().to_owned(),
            activity_id: i.activity_id.map(|id| id.to_string()),
            error: i.error.as_ref().map(ProblemBody::from),
            warnings: i.warnings.iter().map(ProblemBody::from).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneRequest {
    #[schema(example = 46.0569)]
    pub lat: f64,
    #[schema(example = 14.5058)]
    pub lon: f64,
    /// 200 to 2,000 metres.
    #[schema(example = 500.0)]
    pub radius_m: f64,
}

/// A privacy zone: others never see the points of your tracks inside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ZoneBody {
    pub id: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub created_at: String,
}

impl From<&PrivacyZone> for ZoneBody {
    fn from(z: &PrivacyZone) -> Self {
        Self {
            id: z.id.to_string(),
            lat: z.lat,
            lon: z.lon,
            radius_m: z.radius_m,
            created_at: z.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ZonesBody {
    pub items: Vec<ZoneBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamsQuery {
    /// Comma-separated, from `time,latlng,altitude,distance,heartrate,cadence,power`; default
    /// every key the track has.
    pub keys: Option<String>,
    /// `low`, `medium` or `high` (default: every point).
    pub resolution: Option<String>,
}
