//! Kilometre splits: mark₀ is the first timed point; mark_k the time the cumulative distance
//! first reaches k × 1000 m, interpolated linearly in time within the pair of timed points
//! that crosses it. A full split's time is mark_k − mark_{k−1} (paused time included), rounded
//! to 0.1 s; the marks themselves are not rounded. A last, partial split carries its own
//! distance when the remainder is above 0.

/// One split as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// 1-based.
    pub km: u32,
    pub distance_m: f64,
    pub elapsed_s: f64,
}

const KILOMETRE: f64 = 1000.0;

fn tenths(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

/// `timed` is (seconds since the first timed point, cumulative distance) per timed point;
/// `total` the track's distance.
pub fn splits(timed: &[(f64, f64)], total: f64) -> Vec<Split> {
    let Some(&(first_time, _)) = timed.first() else { return Vec::new() };
    let mut marks = vec![first_time];
    let mut target = KILOMETRE;
    for pair in timed.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        while c1 >= target {
            let mark = if c0 >= target { t0 } else { t0 + (target - c0) / (c1 - c0) * (t1 - t0) };
            marks.push(mark);
            target += KILOMETRE;
        }
    }
    let mut result: Vec<Split> = marks
        .windows(2)
        .enumerate()
        .map(|(k, pair)| Split { km: k as u32 + 1, distance_m: KILOMETRE, elapsed_s: tenths(pair[1] - pair[0]) })
        .collect();
    let full = result.len();
    let remainder = total - full as f64 * KILOMETRE;
    let (last_time, _) = timed[timed.len() - 1];
    if remainder > 0.0 {
        let from = marks[marks.len() - 1];
        result.push(Split { km: full as u32 + 1, distance_m: remainder, elapsed_s: tenths(last_time - from) });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_interpolate_within_the_crossing_pair() {
        // 0 m at 0 s, 800 m at 100 s, 1,600 m at 200 s, 2,100 m at 300 s.
        let timed = [(0.0, 0.0), (100.0, 800.0), (200.0, 1600.0), (300.0, 2100.0)];
        let splits = splits(&timed, 2100.0);
        assert_eq!(splits.len(), 3);
        assert_eq!(splits[0], Split { km: 1, distance_m: 1000.0, elapsed_s: 125.0 });
        // mark₂ = 200 + 400/500 × 100 = 280.
        assert_eq!(splits[1], Split { km: 2, distance_m: 1000.0, elapsed_s: 155.0 });
        assert_eq!(splits[2].km, 3);
        assert!((splits[2].distance_m - 100.0).abs() < 1e-9);
        assert_eq!(splits[2].elapsed_s, 20.0);
    }

    #[test]
    fn an_exact_kilometre_has_no_partial_split_and_times_round_to_tenths() {
        let timed = [(0.0, 0.0), (301.26, 1000.0)];
        let splits = splits(&timed, 1000.0);
        assert_eq!(splits, vec![Split { km: 1, distance_m: 1000.0, elapsed_s: 301.3 }]);
    }

    #[test]
    fn one_pair_can_cross_several_kilometres() {
        let timed = [(0.0, 0.0), (30.0, 3000.0)];
        let got: Vec<f64> = splits(&timed, 3000.0).iter().map(|s| s.elapsed_s).collect();
        assert_eq!(got, vec![10.0, 10.0, 10.0]);
    }
}
