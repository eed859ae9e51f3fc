//! The written definitions on tracks small enough to work out by hand. Along the equator a
//! geodesic is the equator's arc: 0.001° of longitude is exactly a × 0.001 × π/180 =
//! 111.319490793 m (a = 6,378,137 m), so every distance below is known without our code.

use stride_tracks::{Point, Summary, TrackError};

const STEP_M: f64 = 6_378_137.0 * 0.001 * std::f64::consts::PI / 180.0;
const SECOND: i64 = 1_000_000_000;

fn p(seconds: Option<f64>, step: Option<u32>) -> Point {
    Point {
        time_ns: seconds.map(|s| (s * SECOND as f64).round() as i64),
        position: step.map(|k| (0.0, f64::from(k) * 0.001)),
        ..Point::default()
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}

#[test]
fn moving_time_counts_pairs_at_half_a_metre_per_second_or_more() {
    let points = [p(Some(0.0), Some(0)), p(Some(10.0), Some(1)), p(Some(20.0), Some(1)), p(Some(250.0), Some(2))];
    let s = Summary::compute(&points).unwrap();
    close(s.distance_m, 2.0 * STEP_M);
    assert_eq!(s.elapsed_s, 250);
    // 0→10 s: 111 m moving; 10→20 s: 0 m stopped; 20→250 s: 111 m in 230 s < 0.5 m/s, stopped.
    assert_eq!(s.moving_s, 10);
    // 111.32 m in 222 s is above 0.5 m/s; in 223 s below (a still pair: no movement at all).
    let fast_enough = [p(Some(0.0), Some(0)), p(Some(222.0), Some(1)), p(Some(223.0), Some(2))];
    assert_eq!(Summary::compute(&fast_enough).unwrap().moving_s, 223);
    let too_slow = [p(Some(0.0), Some(0)), p(Some(223.0), Some(1)), p(Some(224.0), Some(2))];
    assert_eq!(Summary::compute(&too_slow).unwrap().moving_s, 1);
}

#[test]
fn untimed_points_count_for_distance_and_backward_times_are_dropped() {
    // B has no time, C repeats A's time: the timed pair is A→D, 3 steps along the track.
    let points = [p(Some(0.0), Some(0)), p(None, Some(1)), p(Some(0.0), Some(2)), p(Some(20.0), Some(3))];
    let s = Summary::compute(&points).unwrap();
    close(s.distance_m, 3.0 * STEP_M);
    assert_eq!((s.elapsed_s, s.moving_s), (20, 20));
}

#[test]
fn results_round_half_away_from_zero_and_sums_are_exact() {
    // Three pairs of 0.5 s each sum to exactly 1.5 s → 2 s (a float sum of 0.1-steps would not).
    let points: Vec<Point> = (0..4).map(|i| p(Some(f64::from(i) * 0.5), Some(i as u32))).collect();
    let s = Summary::compute(&points).unwrap();
    assert_eq!((s.elapsed_s, s.moving_s), (2, 2));
    let tenths: Vec<Point> = (0..=30).map(|i| p(Some(f64::from(i) * 0.1), Some(i as u32))).collect();
    assert_eq!(Summary::compute(&tenths).unwrap().moving_s, 3);
}

#[test]
fn a_pair_across_segments_adds_nothing() {
    let mut points =
        vec![p(Some(0.0), Some(0)), p(Some(10.0), Some(1)), p(Some(20.0), Some(50)), p(Some(30.0), Some(51))];
    points[2].segment = 1;
    points[3].segment = 1;
    let s = Summary::compute(&points).unwrap();
    close(s.distance_m, 2.0 * STEP_M);
    assert_eq!((s.elapsed_s, s.moving_s), (30, 20));
}

#[test]
fn device_distance_is_used_when_positions_are_missing() {
    let mut points = vec![p(Some(0.0), None), p(Some(10.0), None), p(Some(20.0), Some(0)), p(Some(30.0), Some(1))];
    points[0].device_distance = Some(100.0);
    points[1].device_distance = Some(160.0);
    points[2].device_distance = Some(170.0);
    let s = Summary::compute(&points).unwrap();
    // 60 m by device distance; 10 m from B to C (B has no position); 111 m by geodesic.
    close(s.distance_m, 70.0 + STEP_M);
    assert_eq!(s.moving_s, 30);
    assert_eq!(s.first_position, Some((0.0, 0.0)));
}

#[test]
fn climb_uses_a_three_metre_anchor_and_heart_rate_rounds_half_away() {
    let elevations = [100.0, 102.0, 104.0, 103.0, 99.0, 101.0, 95.0];
    let hrs = [100u8, 101, 0, 150];
    let points: Vec<Point> = elevations
        .iter()
        .enumerate()
        .map(|(i, &e)| Point {
            elevation: Some(e),
            heart_rate: hrs.get(i).copied().filter(|&h| h != 0),
            ..p(Some(i as f64 * 10.0), Some(i as u32))
        })
        .collect();
    let s = Summary::compute(&points).unwrap();
    assert_eq!((s.elevation_gain_m, s.elevation_loss_m), (Some(4.0), Some(9.0)));
    // (100 + 101 + 150) / 3 = 117.0; max 150.
    assert_eq!((s.avg_hr, s.max_hr), (Some(117), Some(150)));
    let halves = [Point { heart_rate: Some(100), ..points[0] }, Point { heart_rate: Some(101), ..points[1] }];
    assert_eq!(Summary::compute(&halves).unwrap().avg_hr, Some(101));
    let one_elevation = [points[0], Point { elevation: None, ..points[1] }];
    assert_eq!(Summary::compute(&one_elevation).unwrap().elevation_gain_m, None);
}

#[test]
fn tracks_without_two_timed_points_or_any_movement_are_no_track() {
    let one = [p(Some(0.0), Some(0)), p(None, Some(1))];
    assert!(matches!(Summary::compute(&one), Err(TrackError::NoTrack(_))));
    let still = [p(Some(0.0), Some(0)), p(Some(60.0), Some(0))];
    assert!(matches!(Summary::compute(&still), Err(TrackError::NoTrack(_))));
    assert!(matches!(Summary::compute(&[]), Err(TrackError::NoTrack(_))));
}
