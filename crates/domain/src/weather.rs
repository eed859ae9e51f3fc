//! Weather at the start of an activity: the start point, the place-and-hour an observation is
//! cached under, and which hour of an hourly series answers for a start.
//!
//! Observations are cached by *cell* (the start rounded to a tenth of a degree, ~11 km of
//! latitude) and UTC hour, so one answer of the external API serves every activity that starts
//! near the same place within the same hours. The API is asked for the cell's centre, never for
//! the exact start: what leaves the server is no more precise than the cache key.

use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Where an activity started: latitude and longitude in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatLng {
    lat: f64,
    lon: f64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be [latitude, longitude] with latitude from -90 to 90 and longitude from -180 to 180")]
pub struct LatLngError;

impl LatLng {
    pub fn new(lat: f64, lon: f64) -> Result<Self, LatLngError> {
        let valid =
            lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
        if valid { Ok(Self { lat, lon }) } else { Err(LatLngError) }
    }

    /// From the JSON form `[lat, lon]`.
    pub fn from_pair(pair: &[f64]) -> Result<Self, LatLngError> {
        match pair {
            [lat, lon] => Self::new(*lat, *lon),
            _ => Err(LatLngError),
        }
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    pub fn cell(&self) -> WeatherCell {
        // Within range, so the products fit an i32 comfortably.
        WeatherCell { lat_tenths: (self.lat * 10.0).round() as i32, lon_tenths: (self.lon * 10.0).round() as i32 }
    }
}

/// A place rounded to 0.1°: the cache key's place, and what the external API is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeatherCell {
    pub lat_tenths: i32,
    pub lon_tenths: i32,
}

impl WeatherCell {
    /// The cell's centre, as the API is asked for it (`48.1`, `-3.0`).
    pub fn latitude(&self) -> String {
        tenths(self.lat_tenths)
    }

    pub fn longitude(&self) -> String {
        tenths(self.lon_tenths)
    }
}

fn tenths(value: i32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{}.{}", value.unsigned_abs() / 10, value.unsigned_abs() % 10)
}

/// The hour an activity's weather is looked up for: its start rounded to the nearest UTC hour.
pub fn weather_hour(start: DateTime<Utc>) -> DateTime<Utc> {
    start.duration_round(TimeDelta::hours(1)).unwrap_or(start)
}

/// How far from the wanted hour a cached observation may be and still stand in for it when the
/// API does not answer.
pub const FALLBACK_WINDOW: TimeDelta = TimeDelta::hours(3);

/// The UTC days to ask the API for: every hour within the fallback window of `hour`, so one
/// answer also fills the cache for the fallback of later lookups nearby.
pub fn weather_days(hour: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    ((hour - FALLBACK_WINDOW).date_naive(), (hour + FALLBACK_WINDOW).date_naive())
}

/// One hour's weather at a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub temperature_c: f64,
    pub wind_speed_ms: f64,
    pub precipitation_mm: f64,
    /// The WMO weather interpretation code.
    pub code: i32,
    pub observed_at: DateTime<Utc>,
}

/// The observation nearest `hour`, if one lies within `window` of it (ties: the earlier).
pub fn nearest_observation(
    observations: &[Observation],
    hour: DateTime<Utc>,
    window: TimeDelta,
) -> Option<Observation> {
    observations
        .iter()
        .filter(|o| (o.observed_at - hour).abs() <= window)
        .min_by_key(|o| ((o.observed_at - hour).abs(), o.observed_at))
        .copied()
}

/// Where an activity's weather came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeatherSource {
    /// This activity's own call to the API answered.
    Api,
    /// The cache answered: a plain hit, or a fallback when the API did not.
    Cached,
}

impl WeatherSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            WeatherSource::Api => "api",
            WeatherSource::Cached => "cached",
        }
    }
}

/// The weather recorded on an activity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weather {
    #[serde(flatten)]
    pub observation: Observation,
    pub source: WeatherSource,
}

/// Where an activity's weather stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeatherStatus {
    /// No weather will come: no start point (or the feature is off).
    None,
    /// A `weather.enrich` job is on its way.
    Pending,
    Done,
    /// Every attempt failed and no cached observation could stand in.
    Unavailable,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("weather status must be none, pending, done or unavailable")]
pub struct WeatherStatusError;

impl WeatherStatus {
    pub const ALL: [WeatherStatus; 4] =
        [WeatherStatus::None, WeatherStatus::Pending, WeatherStatus::Done, WeatherStatus::Unavailable];

    pub fn as_str(&self) -> &'static str {
        match self {
            WeatherStatus::None => "none",
            WeatherStatus::Pending => "pending",
            WeatherStatus::Done => "done",
            WeatherStatus::Unavailable => "unavailable",
        }
    }
}

impl std::str::FromStr for WeatherStatus {
    type Err = WeatherStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WeatherStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or(WeatherStatusError)
    }
}

/// What a `weather.enrich` job looks up, and the fence its result is written under: a job
/// whose target no longer matches the activity (moved, restarted, cleared) writes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeatherTarget {
    pub start: LatLng,
    pub started_at_utc_micros: i64,
}

impl WeatherTarget {
    pub fn hour(&self) -> DateTime<Utc> {
        weather_hour(DateTime::from_timestamp_micros(self.started_at_utc_micros).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
    }

    fn observed(raw: &str) -> Observation {
        Observation { temperature_c: 1.0, wind_speed_ms: 2.0, precipitation_mm: 0.0, code: 3, observed_at: at(raw) }
    }

    #[test]
    fn a_start_point_must_be_on_the_globe() {
        assert!(LatLng::from_pair(&[48.85, 2.35]).is_ok());
        assert!(LatLng::from_pair(&[-90.0, 180.0]).is_ok());
        assert_eq!(LatLng::from_pair(&[90.01, 0.0]), Err(LatLngError));
        assert_eq!(LatLng::from_pair(&[0.0, -180.5]), Err(LatLngError));
        assert_eq!(LatLng::from_pair(&[1.0]), Err(LatLngError));
        assert_eq!(LatLng::from_pair(&[1.0, 2.0, 3.0]), Err(LatLngError));
        assert_eq!(LatLng::new(f64::NAN, 0.0), Err(LatLngError));
    }

    #[test]
    fn nearby_starts_share_a_cell_named_by_its_centre() {
        let a = LatLng::new(48.8566, 2.3322).unwrap().cell();
        let b = LatLng::new(48.8801, 2.2801).unwrap().cell();
        assert_eq!(a, b);
        assert_eq!((a.latitude().as_str(), a.longitude().as_str()), ("48.9", "2.3"));
        let south_west = LatLng::new(-0.04, -73.98).unwrap().cell();
        assert_eq!((south_west.latitude().as_str(), south_west.longitude().as_str()), ("0.0", "-74.0"));
        assert_eq!(LatLng::new(-33.87, 151.21).unwrap().cell().latitude(), "-33.9");
    }

    #[test]
    fn the_hour_is_the_nearest_and_the_days_cover_the_fallback_window() {
        assert_eq!(weather_hour(at("2026-03-01T07:29:59Z")), at("2026-03-01T07:00:00Z"));
        assert_eq!(weather_hour(at("2026-03-01T07:30:00Z")), at("2026-03-01T08:00:00Z"));
        assert_eq!(weather_hour(at("2026-03-01T23:45:00Z")), at("2026-03-02T00:00:00Z"));
        let day = |raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap();
        assert_eq!(weather_days(at("2026-03-01T12:00:00Z")), (day("2026-03-01"), day("2026-03-01")));
        assert_eq!(weather_days(at("2026-03-01T01:00:00Z")), (day("2026-02-28"), day("2026-03-01")));
        assert_eq!(weather_days(at("2026-03-01T22:00:00Z")), (day("2026-03-01"), day("2026-03-02")));
    }

    #[test]
    fn the_nearest_observation_within_the_window_answers() {
        let series =
            [observed("2026-03-01T05:00:00Z"), observed("2026-03-01T09:00:00Z"), observed("2026-03-01T13:00:00Z")];
        let hour = at("2026-03-01T07:00:00Z");
        assert_eq!(
            nearest_observation(&series, hour, FALLBACK_WINDOW).unwrap().observed_at,
            at("2026-03-01T05:00:00Z")
        );
        assert_eq!(
            nearest_observation(&series, at("2026-03-01T10:00:00Z"), FALLBACK_WINDOW).unwrap().observed_at,
            at("2026-03-01T09:00:00Z")
        );
        assert_eq!(nearest_observation(&series, at("2026-03-01T17:00:00Z"), FALLBACK_WINDOW), None);
        assert_eq!(nearest_observation(&series, hour, TimeDelta::zero()), None);
    }
}
