//! Stride's tracks: reading the files a watch or phone records (GPX 1.0/1.1, TCX, FIT, each
//! possibly gzipped) and computing every number shown for them by a written definition.
//!
//! Layer: beside `stride-domain`, below everything else. Pure work on bytes — no I/O, no
//! tokio, no clock — so services run it on the bounded CPU pool and fuzzers run it on anything.
//! It knows no domain type either: sports come out as the names the product uses (`run`,
//! `ride`, …) and services turn them into `Sport`.
//!
//! The definitions (README "Track metrics" states them for users) are implemented by hand in
//! [`metrics`], [`splits`] and [`route`], because exactness is the product's point here: the
//! peers disagree with each other on the same file. Geodesics are Karney's (geographiclib-rs),
//! XML is quick-xml with document type declarations refused before anything is expanded, and
//! FIT messages are decoded by fitparser (which checks the file's CRC).

pub mod archive;
pub mod efforts;
mod error;
mod export;
mod fit;
mod format;
mod geodesic;
mod gpx;
pub mod metrics;
pub mod route;
pub mod splits;
mod sport;
pub mod strava;
mod streams;
mod tcx;
pub mod testing;
mod xml;
mod zone;

pub use archive::{Archive, ArchiveError, EntryError, Media, PlannedItem, RowFile, Work, gunzip_capped, is_zip};
pub use efforts::{EFFORTS_VERSION, Effort, Profile, best_efforts};
pub use error::TrackError;
pub use export::to_gpx;
pub use format::{Format, MAX_INFLATED_BYTES, detect, inflate, parse, parse_as, read};
pub use geodesic::distance_m;
pub use metrics::Summary;
pub use route::{Route, route};
pub use splits::Split;
pub use sport::sport_name;
pub use strava::{StravaRow, strava_sport};
pub use streams::{Resolution, StreamKey, Streams, decode_points, encode_points};

/// The SHA-256 of a file's plain bytes: what duplicates are recognised by.
pub fn sha256(plain: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(plain).into()
}
pub use zone::{Zone, local_offset_at, outside_zones, time_zone_name};

/// A track may hold at most this many points (an item past it fails as `too_large`).
pub const MAX_POINTS: usize = 200_000;

/// One recorded point, every field as the file gave it (absent values are `None`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Unix time in nanoseconds: integer, so sums of time differences are exact.
    pub time_ns: Option<i64>,
    /// Latitude and longitude in degrees (WGS-84).
    pub position: Option<(f64, f64)>,
    /// Metres above sea level.
    pub elevation: Option<f64>,
    /// The device's own cumulative distance in metres (FIT `distance`, TCX `DistanceMeters`).
    pub device_distance: Option<f64>,
    /// Beats per minute; 0 and 255 are read as absent.
    pub heart_rate: Option<u8>,
    pub cadence: Option<u8>,
    pub power: Option<u16>,
    /// Which recording segment the point belongs to; a pair across two adds no distance.
    pub segment: u32,
}

/// A file's track as read: its points in file order and what it says about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Track {
    pub format: Option<Format>,
    /// The sport as the file names it (raw); see [`sport_name`].
    pub sport: Option<String>,
    /// GPX `trk/name`, else `metadata/name`.
    pub name: Option<String>,
    pub points: Vec<Point>,
}

pub(crate) fn heart_rate(value: f64) -> Option<u8> {
    (value > 0.0 && value < 255.0).then(|| value.round() as u8)
}
