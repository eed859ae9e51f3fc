//! Best efforts against their definition: the README's worked example, the plain reference
//! (binary search per breakpoint) on random tracks with stops and pauses, and a fine sweep of
//! every start no window may beat.

use proptest::prelude::*;
use stride_tracks::efforts::{Profile, best_effort_by_search, effort_distances_m};
use stride_tracks::testing::synthetic_run;
use stride_tracks::{Point, Streams, best_efforts};

/// README "Best efforts": a stop of 60 s at 300 m, 1,400 m in 300 s.
fn worked_example() -> Profile {
    Profile::from_samples(&[
        (0.0, 0.0),
        (60.0, 300.0),
        (120.0, 300.0),
        (180.0, 600.0),
        (240.0, 1000.0),
        (300.0, 1400.0),
    ])
}

#[test]
fn the_worked_example_interpolates_inside_a_pair() {
    let km = worked_example().best_effort(1000.0).unwrap();
    // From 400 m (140 s, a third of the way from 300 m to 600 m) to 1,400 m (300 s): no
    // window between recorded points does better than 180 s.
    assert!((km.elapsed_s - 160.0).abs() < 1e-9, "{km:?}");
    assert!((km.start_offset_s - 140.0).abs() < 1e-9 && (km.end_offset_s - 300.0).abs() < 1e-9, "{km:?}");
}

#[test]
fn ties_go_to_the_earliest_start() {
    // 400 m takes 60 s from 600 m and again from 1,000 m: the first counts.
    let lap = worked_example().best_effort(400.0).unwrap();
    assert!((lap.elapsed_s - 60.0).abs() < 1e-9, "{lap:?}");
    assert!((lap.start_offset_s - 180.0).abs() < 1e-9, "{lap:?}");
}

#[test]
fn a_stop_counts_from_its_end_and_to_its_start() {
    // 100 m at 1 m/s, a 50 s stop at 100 m, then 100 m at 1 m/s: the best 100 m is 100 s,
    // never a window that includes the stop.
    let profile = Profile::from_samples(&[(0.0, 0.0), (100.0, 100.0), (150.0, 100.0), (250.0, 200.0)]);
    let effort = profile.best_effort(100.0).unwrap();
    assert!((effort.elapsed_s - 100.0).abs() < 1e-9, "{effort:?}");
    assert!((effort.start_offset_s - 0.0).abs() < 1e-9, "{effort:?}");
    // 150 m has to cross the stop: 150 s of moving plus 50 s stopped.
    let longer = profile.best_effort(150.0).unwrap();
    assert!((longer.elapsed_s - 200.0).abs() < 1e-9, "{longer:?}");
}

#[test]
fn only_distances_the_track_covers() {
    let profile = worked_example();
    assert!(profile.best_effort(1400.0).is_some());
    assert!(profile.best_effort(1400.1).is_none());
    assert!(Profile::from_samples(&[(0.0, 0.0)]).best_effort(1.0).is_none());
}

#[test]
fn a_real_track_has_every_distance_it_covers() {
    let points: Vec<Point> = synthetic_run(3_600, (46.0, 14.5), 1_700_000_000);
    let streams = Streams::from_points(points);
    let total = streams.distance.last().copied().unwrap();
    let efforts = best_efforts(&streams.points, &streams.distance);
    let expected: Vec<f64> = effort_distances_m().into_iter().filter(|d| *d <= total).collect();
    assert_eq!(efforts.iter().map(|e| e.distance_m).collect::<Vec<_>>(), expected);
    for pair in efforts.windows(2) {
        // Longer never faster; and each within the track's time.
        assert!(pair[1].elapsed_s >= pair[0].elapsed_s, "{pair:?}");
    }
    assert!(efforts.iter().all(|e| e.start_offset_s >= 0.0 && e.end_offset_s <= 3_600.0));
}

/// Times strictly increasing; steps of 0–30 m (0: a stop) over 1–20 s.
fn samples() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((1u32..20, prop_oneof![Just(0u32), 0u32..30]), 2..120).prop_map(|steps| {
        let (mut t, mut d) = (0.0, 0.0);
        let mut out = vec![(0.0, 0.0)];
        for (dt, dd) in steps {
            t += f64::from(dt);
            d += f64::from(dd);
            out.push((t, d));
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_sweep_matches_the_reference(samples in samples(), length in 1.0f64..800.0) {
        let profile = Profile::from_samples(&samples);
        let swept = profile.best_effort(length);
        let searched = best_effort_by_search(&profile, length);
        prop_assert_eq!(swept.is_some(), searched.is_some());
        if let (Some(a), Some(b)) = (swept, searched) {
            prop_assert!((a.elapsed_s - b.elapsed_s).abs() < 1e-6, "{a:?} vs {b:?}");
            prop_assert!((a.start_offset_s - b.start_offset_s).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn no_start_beats_the_best(samples in samples(), length in 1.0f64..600.0) {
        let profile = Profile::from_samples(&samples);
        let Some(best) = profile.best_effort(length) else { return Ok(()) };
        // Every start on a fine grid, each end found by walking the samples: none faster.
        let total = samples.last().unwrap().1;
        let time_at = |x: f64, latest: bool| -> f64 {
            let x = x.clamp(0.0, total);
            let mut found = None;
            for pair in samples.windows(2) {
                let ((t0, d0), (t1, d1)) = (pair[0], pair[1]);
                if d0 == x && d1 == x { found = Some(if latest { t1 } else { t0 }); }
                else if (d0..=d1).contains(&x) && d1 > d0 {
                    let t = t0 + (x - d0) / (d1 - d0) * (t1 - t0);
                    if latest || found.is_none() { found = Some(t) }
                }
                if !latest && found.is_some() { break; }
            }
            found.unwrap()
        };
        let steps = 400;
        for i in 0..=steps {
            let s = (total - length) * f64::from(i) / f64::from(steps);
            let elapsed = time_at(s + length, false) - time_at(s, true);
            prop_assert!(elapsed >= best.elapsed_s - 1e-6, "start {s}: {elapsed} beats {best:?}");
        }
    }
}
