//! Every number of every third-party fixture against a second implementation of the
//! definitions (crates/tracks/reference/metrics.py: Python, GeographicLib, fitdecode).
//!
//! `cargo xtask ci` fetches the fixtures (the `gpx` and `fitparser` crate packages and
//! gpxpy 1.6.2's source package, SHA-256 pinned) and the reference's virtualenv, and passes
//! `STRIDE_TRACK_FIXTURES` and `STRIDE_REFERENCE_PYTHON`; `cargo xtask fixtures` does only that.
//! Without them the test says so and passes, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stride_tracks::{Streams, Summary, read, route};

fn setup() -> Option<(PathBuf, PathBuf)> {
    let fixtures = std::env::var_os("STRIDE_TRACK_FIXTURES").map(PathBuf::from);
    let python = std::env::var_os("STRIDE_REFERENCE_PYTHON").map(PathBuf::from);
    match (fixtures, python) {
        (Some(f), Some(p)) => Some((f, p)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true: STRIDE_TRACK_FIXTURES and STRIDE_REFERENCE_PYTHON must be set (cargo xtask fixtures)")
        }
        _ => {
            eprintln!("skipped: run `cargo xtask fixtures` and set what it prints to compare against the reference");
            None
        }
    }
}

fn track_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            track_files(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("gpx" | "fit" | "tcx")) {
            out.push(path);
        }
    }
}

fn close(a: f64, b: f64, what: &str, file: &str) {
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{file}: {what}: ours {a}, reference {b}");
}

#[test]
fn every_fixture_matches_the_reference_implementation() {
    let Some((fixtures, python)) = setup() else { return };
    let mut files = Vec::new();
    track_files(&fixtures, &mut files);
    files.sort();
    assert!(files.len() >= 40, "expected the gpx, fitparser and gpxpy fixtures, found {}", files.len());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/metrics.py");
    let output = Command::new(&python).arg(&script).args(&files).output().expect("run the reference");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut compared = 0;
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let reference: Value = serde_json::from_str(line).unwrap();
        let file = reference["file"].as_str().unwrap().to_owned();
        let ours = read(&std::fs::read(&file).unwrap()).and_then(|track| {
            let summary = Summary::compute(&track.points)?;
            let streams = Streams::from_points(track.points);
            Ok((summary, route(&streams.positions())))
        });
        let error = reference["error"].as_str();
        match (ours, error) {
            (Err(e), Some(expected)) if expected == e.code() => continue,
            // Files the reference's plain parser cannot read (not a track, other namespaces):
            (_, Some(unreadable)) if unreadable.starts_with("unreadable") => continue,
            (Err(e), _) => panic!("{file}: ours failed with {e:?}, reference gave {reference}"),
            (Ok(_), Some(expected)) => panic!("{file}: ours read it, reference says {expected}"),
            (Ok((summary, route)), None) => {
                assert_eq!(u64::from(summary.points), reference["points"].as_u64().unwrap(), "{file}: points");
                assert_eq!(summary.elapsed_s, reference["elapsed_s"].as_i64().unwrap(), "{file}: elapsed_s");
                assert_eq!(summary.moving_s, reference["moving_s"].as_i64().unwrap(), "{file}: moving_s");
                close(summary.distance_m, reference["distance_m"].as_f64().unwrap(), "distance_m", &file);
                for (ours, key) in
                    [(summary.elevation_gain_m, "elevation_gain_m"), (summary.elevation_loss_m, "elevation_loss_m")]
                {
                    match (ours, reference[key].as_f64()) {
                        (Some(a), Some(b)) => close(a, b, key, &file),
                        (a, b) => assert_eq!(a, b, "{file}: {key}"),
                    }
                }
                assert_eq!(summary.avg_hr.map(u64::from), reference["avg_hr"].as_u64(), "{file}: avg_hr");
                assert_eq!(summary.max_hr.map(u64::from), reference["max_hr"].as_u64(), "{file}: max_hr");
                let splits = reference["splits"].as_array().unwrap();
                assert_eq!(summary.splits.len(), splits.len(), "{file}: splits");
                for (ours, theirs) in summary.splits.iter().zip(splits) {
                    assert_eq!(u64::from(ours.km), theirs["km"].as_u64().unwrap());
                    close(ours.distance_m, theirs["distance_m"].as_f64().unwrap(), "split distance", &file);
                    close(ours.elapsed_s, theirs["elapsed_s"].as_f64().unwrap(), "split time", &file);
                }
                assert_eq!(
                    route.as_ref().map(|r| r.polyline.as_str()),
                    reference["polyline"].as_str(),
                    "{file}: polyline"
                );
                assert_eq!(route.as_ref().map(|r| r.tolerance_m), reference["polyline_tolerance_m"].as_f64(), "{file}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 20, "only {compared} fixtures had a track to compare");
    eprintln!("{compared} fixtures agree with the reference");
}
