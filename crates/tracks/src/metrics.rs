//! The numbers of a track, each by its written definition (README "Track metrics"):
//!
//! - Δd of consecutive points: the geodesic distance of their positions when both have one,
//!   else the difference of their device distances when both have one, else 0; a pair across
//!   a segment boundary adds nothing. `distance_m` = Σ Δd (not rounded).
//! - Timed points: those with a time later than the previous kept timed point's.
//!   `elapsed_s` = last − first timed point; `moving_s` = Σ Δt over consecutive timed points of
//!   one segment whose distance along the track is ≥ 0.5 m/s × Δt. Times are integer
//!   nanoseconds, so the sums are exact; only the results are rounded, half away from zero.
//! - Climb: an anchor at the first elevation; an elevation ≥ 3 m above it adds the difference
//!   to the gain and becomes the anchor, ≥ 3 m below adds to the loss likewise.
//! - Heart rate: the mean of the values present (rounded half away from zero) and the maximum.

use crate::splits::{Split, splits};
use crate::{Point, TrackError, distance_m};

/// The climb hysteresis of the elevation definition, in metres.
pub const CLIMB_THRESHOLD_M: f64 = 3.0;
/// A pair of timed points counts as moving at this speed or above, in m/s.
pub const MOVING_SPEED_M_S: f64 = 0.5;

const NANOS: i64 = 1_000_000_000;

/// What the database keeps of a track (the route is computed separately: it depends on who
/// looks, see [`crate::route`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub points: u32,
    /// Unix nanoseconds of the first timed point: the activity's start.
    pub started_at_ns: i64,
    pub elapsed_s: i64,
    pub moving_s: i64,
    pub distance_m: f64,
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    pub avg_hr: Option<u32>,
    pub max_hr: Option<u32>,
    /// The first point that has a position: where the time zone and the weather are read.
    pub first_position: Option<(f64, f64)>,
    pub splits: Vec<Split>,
}

/// The distance along the track from its first point to each point, in metres.
pub fn cumulative_distance(points: &[Point]) -> Vec<f64> {
    let mut cumulative = Vec::with_capacity(points.len());
    let mut total = 0.0;
    for (i, point) in points.iter().enumerate() {
        if i > 0 {
            total += step(&points[i - 1], point);
        }
        cumulative.push(total);
    }
    cumulative
}

/// Δd of two consecutive points.
fn step(a: &Point, b: &Point) -> f64 {
    if a.segment != b.segment {
        return 0.0;
    }
    match (a.position, b.position, a.device_distance, b.device_distance) {
        (Some(pa), Some(pb), _, _) => distance_m(pa, pb),
        (_, _, Some(da), Some(db)) => db - da,
        _ => 0.0,
    }
}

/// The indices of the timed points: each has a time later than the previous one kept.
pub fn timed_indices(points: &[Point]) -> Vec<usize> {
    let mut timed = Vec::with_capacity(points.len());
    let mut last = None;
    for (i, point) in points.iter().enumerate() {
        if let Some(t) = point.time_ns
            && last.is_none_or(|previous| t > previous)
        {
            timed.push(i);
            last = Some(t);
        }
    }
    timed
}

/// Seconds from nanoseconds, rounded half away from zero.
fn round_seconds(nanos: i64) -> i64 {
    let whole = nanos / NANOS;
    let rest = nanos % NANOS;
    if rest.abs() * 2 >= NANOS { whole + rest.signum() } else { whole }
}

impl Summary {
    pub fn compute(points: &[Point]) -> Result<Self, TrackError> {
        Self::compute_with(points, &cumulative_distance(points))
    }

    /// [`Summary::compute`] with the cumulative distance already computed (the geodesics are
    /// most of the work): what [`crate::Streams`] keeps.
    pub fn compute_with(points: &[Point], cumulative: &[f64]) -> Result<Self, TrackError> {
        let timed = timed_indices(points);
        let (Some(&first), Some(&last)) = (timed.first(), timed.last()) else {
            return Err(no_track());
        };
        if timed.len() < 2 {
            return Err(no_track());
        }
        let time = |i: usize| points[i].time_ns.unwrap_or_default();
        let mut moving_ns = 0i64;
        for pair in timed.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if points[a].segment != points[b].segment {
                continue;
            }
            let dt = time(b) - time(a);
            let dd = cumulative[b] - cumulative[a];
            if dt > 0 && dd >= MOVING_SPEED_M_S * (dt as f64 / NANOS as f64) {
                moving_ns += dt;
            }
        }
        let moving_s = round_seconds(moving_ns);
        if moving_s == 0 {
            return Err(TrackError::NoTrack("the track never moves (its moving time rounds to 0 s)".into()));
        }
        let (elevation_gain_m, elevation_loss_m) = climb(points.iter().filter_map(|p| p.elevation));
        let (avg_hr, max_hr) = heart_rates(points);
        let distance_m = cumulative.last().copied().unwrap_or(0.0);
        let marks: Vec<(f64, f64)> =
            timed.iter().map(|&i| ((time(i) - time(first)) as f64 / NANOS as f64, cumulative[i])).collect();
        Ok(Self {
            points: u32::try_from(points.len()).unwrap_or(u32::MAX),
            started_at_ns: time(first),
            elapsed_s: round_seconds(time(last) - time(first)),
            moving_s,
            distance_m,
            elevation_gain_m,
            elevation_loss_m,
            avg_hr,
            max_hr,
            first_position: points.iter().find_map(|p| p.position),
            splits: splits(&marks, distance_m),
        })
    }
}

fn no_track() -> TrackError {
    TrackError::NoTrack("the file has fewer than 2 timed points".into())
}

/// Gain and loss with the 3 m hysteresis; `None` for both when fewer than 2 elevations.
pub fn climb(elevations: impl IntoIterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let mut elevations = elevations.into_iter();
    let Some(mut anchor) = elevations.next() else { return (None, None) };
    let (mut gain, mut loss, mut count) = (0.0, 0.0, 1usize);
    for e in elevations {
        count += 1;
        if e - anchor >= CLIMB_THRESHOLD_M {
            gain += e - anchor;
            anchor = e;
        } else if anchor - e >= CLIMB_THRESHOLD_M {
            loss += anchor - e;
            anchor = e;
        }
    }
    if count < 2 { (None, None) } else { (Some(gain), Some(loss)) }
}

fn heart_rates(points: &[Point]) -> (Option<u32>, Option<u32>) {
    let (mut sum, mut count, mut max) = (0u64, 0u64, 0u32);
    for hr in points.iter().filter_map(|p| p.heart_rate) {
        sum += u64::from(hr);
        count += 1;
        max = max.max(u32::from(hr));
    }
    if count == 0 {
        return (None, None);
    }
    // Half away from zero for a positive mean: floor(sum / count + 1/2).
    let mean = (2 * sum + count) / (2 * count);
    (Some(mean as u32), Some(max))
}
