//! Best efforts: the fastest stretch of a track covering each standard distance, exact to the
//! metre (README "Best efforts" defines them, with a worked example). Hand-written, because
//! the definition is the product's own:
//!
//! - D(t) is the track's cumulative distance ([`crate::cumulative_distance`]: a pair across a
//!   segment boundary adds nothing) as a piecewise-linear function of time through the timed
//!   points ([`crate::timed_indices`]). A device distance that steps back is held at its
//!   running maximum, so D never decreases.
//! - For a window of length L starting at distance s: start(s) = the latest t with D(t) = s,
//!   end(s) = the earliest t with D(t) = s + L; the effort is end(s) − start(s), minimised over
//!   s in [D(first), D(last) − L]; ties go to the earliest start.
//!
//! Between two breakpoints (s or s + L equal to the distance of a timed point) both ends move
//! linearly with s, so the effort is linear there and its minimum lies at a breakpoint, where
//! taking the latest start and the earliest end is the lower of the two one-sided limits. The
//! sweep visits every breakpoint in increasing s with two pointers that only move forward:
//! O(n) per distance. [`best_effort_by_search`] is the plain reference it is tested and
//! benchmarked against (binary search for each breakpoint's other end).

use crate::Point;
use crate::metrics::timed_indices;

/// Bumped whenever a change here changes any stored effort: a server that finds older efforts
/// stored rebuilds them (`stride records rebuild`).
pub const EFFORTS_VERSION: i32 = 1;

/// The distances of runs, walks and hikes, in metres.
pub const RUN_DISTANCES_M: [f64; 7] = [400.0, 1_000.0, 1_609.344, 5_000.0, 10_000.0, 21_097.5, 42_195.0];
/// The distances of rides, in metres.
pub const RIDE_DISTANCES_M: [f64; 6] = [5_000.0, 10_000.0, 20_000.0, 40_000.0, 50_000.0, 100_000.0];

/// Every distance an effort is computed for, both sets together, shortest first: efforts are
/// stored for all of them, so a change of sport needs no new read of the track.
pub fn effort_distances_m() -> Vec<f64> {
    let mut all: Vec<f64> = RUN_DISTANCES_M.iter().chain(&RIDE_DISTANCES_M).copied().collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    all
}

/// Ties closer than this (seconds) are ties: the earlier start wins.
const TIE_S: f64 = 1e-9;

/// The fastest window of one distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effort {
    pub distance_m: f64,
    pub elapsed_s: f64,
    /// Seconds from the first timed point.
    pub start_offset_s: f64,
    pub end_offset_s: f64,
}

/// D(t) through the timed points, grouped by distance: each distinct distance v[j] (strictly
/// increasing) with the first time `first[j]` and the last time `last[j]` D(t) has it.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    v: Vec<f64>,
    first: Vec<f64>,
    last: Vec<f64>,
}

impl Profile {
    /// The profile of `points`, with their cumulative distance (what [`crate::Streams`] keeps).
    pub fn new(points: &[Point], cumulative: &[f64]) -> Self {
        let timed = timed_indices(points);
        let Some(&origin) = timed.first() else { return Self::default() };
        let t0 = points[origin].time_ns.unwrap_or_default();
        let mut profile = Self::default();
        let mut reached = f64::NEG_INFINITY;
        for i in timed {
            let t = (points[i].time_ns.unwrap_or_default() - t0) as f64 / 1e9;
            let d = cumulative[i].max(reached);
            if d > reached {
                profile.v.push(d);
                profile.first.push(t);
                profile.last.push(t);
                reached = d;
            } else if let Some(last) = profile.last.last_mut() {
                *last = t;
            }
        }
        profile
    }

    /// From (time offset, distance) pairs, times strictly increasing: for tests and benches.
    pub fn from_samples(samples: &[(f64, f64)]) -> Self {
        let points: Vec<Point> = samples
            .iter()
            .map(|&(t, _)| Point { time_ns: Some((t * 1e9).round() as i64), ..Point::default() })
            .collect();
        let cumulative: Vec<f64> = samples.iter().map(|&(_, d)| d).collect();
        Self::new(&points, &cumulative)
    }

    /// The distance D covers from the first timed point to the last.
    pub fn span_m(&self) -> f64 {
        match (self.v.first(), self.v.last()) {
            (Some(a), Some(b)) => b - a,
            _ => 0.0,
        }
    }

    /// The latest time D(t) = x, `j` being the last group at or before x (within [`SAME_M`]).
    fn latest_at(&self, j: usize, x: f64) -> f64 {
        if (x - self.v[j]).abs() <= SAME_M || j + 1 == self.v.len() {
            return self.last[j];
        }
        let fraction = (x - self.v[j]) / (self.v[j + 1] - self.v[j]);
        self.last[j] + fraction * (self.first[j + 1] - self.last[j])
    }

    /// The earliest time D(t) = x, `k` being the first group at or after x (within [`SAME_M`]).
    fn earliest_at(&self, k: usize, x: f64) -> f64 {
        if (self.v[k] - x).abs() <= SAME_M || k == 0 {
            return self.first[k];
        }
        let fraction = (x - self.v[k - 1]) / (self.v[k] - self.v[k - 1]);
        self.last[k - 1] + fraction * (self.first[k] - self.last[k - 1])
    }

    /// The best effort over `length` metres, `None` when the track covers less.
    pub fn best_effort(&self, length: f64) -> Option<Effort> {
        let n = self.v.len();
        if n < 2 || length.is_nan() || length <= 0.0 || self.span_m() < length {
            return None;
        }
        let (lowest, highest) = (self.v[0], self.v[n - 1] - length);
        let mut best: Option<Effort> = None;
        // a: the next group whose distance is a start; b: the next whose distance is an end
        // (its start v[b] − L). j and k: the groups at or around s and s + L.
        let (mut a, mut b, mut j, mut k) = (0usize, 0usize, 0usize, 0usize);
        while b < n && self.v[b] - length < lowest - SAME_M {
            b += 1;
        }
        loop {
            let from_start = (a < n && self.v[a] <= highest + SAME_M).then(|| self.v[a]);
            let from_end = (b < n).then(|| self.v[b] - length).filter(|s| *s <= highest + SAME_M);
            let s = match (from_start, from_end) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) => x,
                (None, Some(y)) => y,
                (None, None) => break,
            };
            while j + 1 < n && self.v[j + 1] <= s + SAME_M {
                j += 1;
            }
            while k + 1 < n && self.v[k] < s + length - SAME_M {
                k += 1;
            }
            consider(&mut best, length, self.latest_at(j, s), self.earliest_at(k, s + length));
            if from_start == Some(s) {
                a += 1;
            }
            if from_end == Some(s) {
                b += 1;
            }
        }
        best
    }
}

/// Distances closer than this (metres) are one: a breakpoint computed as v − L lands on a
/// group's distance exactly, whatever the rounding of the subtraction.
const SAME_M: f64 = 1e-7;

fn consider(best: &mut Option<Effort>, length: f64, start: f64, end: f64) {
    let elapsed = end - start;
    if best.is_none_or(|b| elapsed < b.elapsed_s - TIE_S) {
        *best = Some(Effort { distance_m: length, elapsed_s: elapsed, start_offset_s: start, end_offset_s: end });
    }
}

/// The best efforts of a track for every distance of [`effort_distances_m`] it covers.
pub fn best_efforts(points: &[Point], cumulative: &[f64]) -> Vec<Effort> {
    let profile = Profile::new(points, cumulative);
    effort_distances_m().into_iter().filter_map(|length| profile.best_effort(length)).collect()
}

/// The plain reference: every breakpoint's other end found by binary search. O(n log n).
pub fn best_effort_by_search(profile: &Profile, length: f64) -> Option<Effort> {
    let n = profile.v.len();
    if n < 2 || length.is_nan() || length <= 0.0 || profile.span_m() < length {
        return None;
    }
    let (lowest, highest) = (profile.v[0], profile.v[n - 1] - length);
    let mut starts: Vec<f64> = profile.v.iter().copied().filter(|&s| s <= highest + SAME_M).collect();
    starts.extend(profile.v.iter().map(|&e| e - length).filter(|&s| s >= lowest - SAME_M && s <= highest + SAME_M));
    starts.sort_by(f64::total_cmp);
    let mut best = None;
    for s in starts {
        let j = profile.v.partition_point(|&v| v <= s + SAME_M).saturating_sub(1);
        let k = profile.v.partition_point(|&v| v < s + length - SAME_M).min(n - 1);
        consider(&mut best, length, profile.latest_at(j, s), profile.earliest_at(k, s + length));
    }
    best
}
