//! Properties the definitions promise for any track.

use proptest::prelude::*;
use stride_tracks::metrics::{climb, cumulative_distance};
use stride_tracks::{Point, Resolution, Streams, Summary, decode_points, encode_points, read, to_gpx};

const T0: i64 = 1_780_381_800;

/// Tracks of up to 300 points: positions with at most 7 decimals (what GPX export keeps),
/// times in whole or fractional seconds, sometimes missing, several segments.
fn tracks() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec(
        (
            -600_000i64..600_000,
            -600_000i64..600_000,
            prop::option::weighted(0.9, 0u32..400_000),
            prop::option::weighted(0.9, 1i64..30_000),
            prop::option::of(1u8..254),
            prop::bool::weighted(0.05),
        ),
        2..300,
    )
    .prop_map(|steps| {
        let (mut lat, mut lon, mut time, mut segment) = (460_000_000i64, 140_000_000i64, T0 * 1000, 0u32);
        steps
            .into_iter()
            .map(|(dlat, dlon, ele, dt_ms, hr, new_segment)| {
                lat += dlat / 1000;
                lon += dlon / 1000;
                segment += u32::from(new_segment);
                let time_ns = dt_ms.map(|dt| {
                    time += dt;
                    time * 1_000_000
                });
                Point {
                    time_ns,
                    position: Some((lat as f64 / 1e7, lon as f64 / 1e7)),
                    elevation: ele.map(|e| f64::from(e) / 100.0),
                    heart_rate: hr,
                    segment,
                    ..Point::default()
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_reversed_track_keeps_its_distance(points in tracks()) {
        let forward = cumulative_distance(&points).last().copied().unwrap();
        let reversed: Vec<Point> = points.iter().rev().copied().collect();
        let backward = cumulative_distance(&reversed).last().copied().unwrap();
        prop_assert!((forward - backward).abs() <= 1e-6 * forward.max(1.0), "{forward} vs {backward}");
    }

    #[test]
    fn an_export_re_imports_to_the_same_distance_moving_time_and_climb(points in tracks()) {
        let Ok(original) = Summary::compute(&points) else { return Ok(()) };
        let streams = Streams::from_points(points);
        let gpx = to_gpx(&streams, "Round & trip <1>", "run");
        let again = read(gpx.as_bytes()).unwrap();
        prop_assert_eq!(again.name.as_deref(), Some("Round & trip <1>"));
        let summary = Summary::compute(&again.points).unwrap();
        prop_assert!((summary.distance_m - original.distance_m).abs() <= 0.01);
        prop_assert_eq!(summary.moving_s, original.moving_s);
        prop_assert_eq!(summary.elapsed_s, original.elapsed_s);
        prop_assert_eq!(summary.elevation_gain_m, original.elevation_gain_m);
        prop_assert_eq!(summary.elevation_loss_m, original.elevation_loss_m);
        prop_assert_eq!(summary.avg_hr, original.avg_hr);
    }

    #[test]
    fn stored_points_decode_to_what_was_encoded(points in tracks()) {
        let streams = Streams::from_points(points);
        let decoded = decode_points(&encode_points(&streams)).unwrap();
        prop_assert_eq!(decoded, streams);
    }

    #[test]
    fn climb_counts_only_moves_of_three_metres_from_the_anchor(steps in prop::collection::vec(-500i32..500, 2..200)) {
        let elevations: Vec<f64> = steps.iter().scan(0.0, |e, s| { *e += f64::from(*s) / 100.0; Some(*e) }).collect();
        let (gain, loss) = climb(elevations.iter().copied());
        let (gain, loss) = (gain.unwrap(), loss.unwrap());
        // Net change equals gain − loss up to the last anchor, which is within 3 m of the end.
        let net = elevations[elevations.len() - 1] - elevations[0];
        prop_assert!((gain - loss - net).abs() < 3.0 + 1e-9);
        prop_assert!(gain >= 0.0 && loss >= 0.0);
    }
}

#[test]
fn corrupt_stored_points_are_an_error_not_a_panic() {
    let streams = Streams::from_points(vec![Point { time_ns: Some(1), ..Point::default() }; 10]);
    let bytes = encode_points(&streams);
    for cut in 0..bytes.len() {
        let _ = decode_points(&bytes[..cut]);
    }
    assert!(decode_points(b"not deflate at all").is_err());
}

#[test]
fn resolutions_take_every_kth_point_and_the_last() {
    assert_eq!(Resolution::High.indices(5), vec![0, 1, 2, 3, 4]);
    // n = 2,500: medium k = 3 → 0, 3, …, 2,499 (834 points, the last included).
    let medium = Resolution::Medium.indices(2500);
    assert_eq!(medium.len(), 834);
    assert_eq!(&medium[..3], &[0, 3, 6]);
    assert_eq!(medium.last(), Some(&2499));
    // low k = 25 → 0, 25, …, 2,475 and then 2,499.
    let low = Resolution::Low.indices(2500);
    assert_eq!(low.len(), 101);
    assert_eq!(&low[99..], &[2475, 2499]);
    assert_eq!(Resolution::Low.indices(1), vec![0]);
    assert!(Resolution::Low.indices(0).is_empty());
}
