//! Tracks as the rest of the product sees them: where an activity came from, its optional
//! description, and the summary of a recorded track (computed by `stride-tracks`, stored as
//! JSON with the activity). The points themselves live in the blob store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ActivityId, UserId, ZoneId};

/// Where an activity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Manual,
    Gpx,
    Tcx,
    Fit,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("source must be one of manual, gpx, tcx, fit")]
pub struct SourceError;

impl Source {
    pub const ALL: [Source; 4] = [Source::Manual, Source::Gpx, Source::Tcx, Source::Fit];

    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Manual => "manual",
            Source::Gpx => "gpx",
            Source::Tcx => "tcx",
            Source::Fit => "fit",
        }
    }
}

impl FromStr for Source {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL.into_iter().find(|source| source.as_str() == s).ok_or(SourceError)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Free text of at most 10,000 characters; newlines and tabs allowed, other control and
/// bidirectional-override characters not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Description(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "description must be at most 10000 characters and contain no control characters other than newlines and tabs, and no bidirectional overrides"
)]
pub struct DescriptionError;

impl Description {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(raw: &str) -> Result<Self, DescriptionError> {
        let too_long = raw.chars().count() > Self::MAX_CHARS;
        let forbidden = raw.chars().any(|c| crate::user::is_forbidden_in_text(c) && c != '\n' && c != '\t');
        if too_long || forbidden { Err(DescriptionError) } else { Ok(Self(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One kilometre split (or the last, partial one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub km: u32,
    pub distance_m: f64,
    pub elapsed_s: f64,
}

/// What an activity keeps of its track: every figure the API shows (README "Track metrics"
/// defines each). The polyline and bounding box here are the owner's; others see them
/// computed again without the points inside the owner's privacy zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackSummary {
    pub points: u32,
    pub elapsed_s: i64,
    pub moving_s: i64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    pub avg_hr: Option<u32>,
    pub max_hr: Option<u32>,
    pub polyline: Option<String>,
    pub polyline_tolerance_m: Option<f64>,
    pub bbox: Option<[f64; 4]>,
    pub splits: Vec<SplitSummary>,
}

/// The blob holding an activity's points.
pub fn track_points_blob(activity: ActivityId) -> String {
    format!("tracks/{activity}.points")
}

/// A circle the owner's tracks are hidden in from everyone else.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacyZone {
    pub id: ZoneId,
    pub user_id: UserId,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl PrivacyZone {
    pub const MIN_RADIUS_M: f64 = 200.0;
    pub const MAX_RADIUS_M: f64 = 2000.0;
    /// Zones one user may have.
    pub const MAX_PER_USER: usize = 10;
}
