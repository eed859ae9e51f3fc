//! Reading each format: what is kept, what is refused and why.

use stride_tracks::testing::{FitMessage, TimerEvent, crc, fit_file, gpx_file, synthetic_run};
use stride_tracks::{Format, Point, TrackError, parse, read};

const T0: i64 = 1_780_381_800; // 2026-06-02T06:30:00Z

fn at(seconds: i64) -> Option<i64> {
    Some((T0 + seconds) * 1_000_000_000)
}

#[test]
fn gpx_keeps_points_segments_names_and_extensions() {
    let gpx = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1" xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <metadata><name>Meta</name></metadata>
  <trk><name>Morning &amp; run</name><type>Running</type>
    <trkseg>
      <trkpt lat="46.0" lon="14.0"><ele>300.5</ele><time>2026-06-02T06:30:00Z</time>
        <extensions><ns3:TrackPointExtension><ns3:hr>120</ns3:hr><ns3:cad>80</ns3:cad></ns3:TrackPointExtension></extensions></trkpt>
      <trkpt lat="46.001" lon="14.0"><time>2026-06-02T06:30:10.5Z</time></trkpt>
    </trkseg>
    <trkseg><trkpt lat="46.002" lon="14.0"/><trkpt lat="46.003" lon="14.0"><extensions><power>250</power><hr>255</hr></extensions></trkpt></trkseg>
  </trk>
  <wpt lat="1" lon="1"><time>2026-06-02T06:00:00Z</time></wpt>
</gpx>"#;
    let track = read(gpx.as_bytes()).unwrap();
    assert_eq!(track.format, Some(Format::Gpx));
    assert_eq!(track.name.as_deref(), Some("Morning & run"));
    assert_eq!(track.sport.as_deref(), Some("Running"));
    assert_eq!(track.points.len(), 4);
    assert_eq!(
        track.points[0],
        Point {
            time_ns: at(0),
            position: Some((46.0, 14.0)),
            elevation: Some(300.5),
            heart_rate: Some(120),
            cadence: Some(80),
            ..Point::default()
        }
    );
    assert_eq!(track.points[1].time_ns, Some((T0 + 10) * 1_000_000_000 + 500_000_000));
    assert_eq!((track.points[1].segment, track.points[2].segment), (0, 1));
    assert_eq!(track.points[3].power, Some(250));
    assert_eq!(track.points[3].heart_rate, None, "255 is absent");
}

#[test]
fn gpx_without_a_track_name_takes_the_metadata_name_and_gpx_1_0_its_own() {
    let v11 = r#"<gpx version="1.1"><metadata><name>From metadata</name></metadata><trk><trkseg/></trk></gpx>"#;
    assert_eq!(read(v11.as_bytes()).unwrap().name.as_deref(), Some("From metadata"));
    let v10 = r#"<gpx version="1.0"><name>Old style</name><trk><trkseg><trkpt lat="1" lon="2"><ele>5</ele></trkpt></trkseg></trk></gpx>"#;
    let track = read(v10.as_bytes()).unwrap();
    assert_eq!(track.name.as_deref(), Some("Old style"));
    assert_eq!(track.points[0].elevation, Some(5.0));
}

#[test]
fn doctype_and_entity_declarations_are_refused_before_expansion() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<gpx><trk><name>&b;</name></trk></gpx>"#;
    let error = read(laughs.as_bytes()).unwrap_err();
    assert_eq!(error.code(), "invalid_file");
    assert!(error.to_string().contains("DOCTYPE"), "{error}");
    let undeclared = r#"<gpx><trk><name>&xxe;</name></trk></gpx>"#;
    assert!(read(undeclared.as_bytes()).unwrap_err().to_string().contains("&xxe;"));
    let external = r#"<!DOCTYPE gpx SYSTEM "file:///etc/passwd"><gpx/>"#;
    assert_eq!(read(external.as_bytes()).unwrap_err().code(), "invalid_file");
}

#[test]
fn truncated_or_malformed_xml_is_invalid() {
    let whole = gpx_file(&synthetic_run(20, (46.0, 14.0), T0), Some("x"), None);
    for cut in [whole.len() / 2, whole.len() - 10] {
        assert_eq!(read(&whole.as_bytes()[..cut]).unwrap_err().code(), "invalid_file", "cut at {cut}");
    }
    assert_eq!(read(b"<gpx><trk></gpx>").unwrap_err().code(), "invalid_file");
    assert_eq!(
        read(br#"<gpx><trk><trkseg><trkpt lat="91" lon="0"/></trkseg></trk></gpx>"#).unwrap_err().code(),
        "invalid_file"
    );
    assert_eq!(read(b"plain text").unwrap_err(), TrackError::UnknownFormat);
}

#[test]
fn tcx_tracks_within_a_lap_are_segments_and_laps_continue_one() {
    let point = |t: &str, lat: f64, extra: &str| {
        format!(
            "<Trackpoint><Time>{t}</Time><Position><LatitudeDegrees>{lat}</LatitudeDegrees><LongitudeDegrees>14</LongitudeDegrees></Position>\
             <AltitudeMeters>301</AltitudeMeters><DistanceMeters>12.5</DistanceMeters><HeartRateBpm><Value>131</Value></HeartRateBpm>{extra}</Trackpoint>"
        )
    };
    let tcx = format!(
        r#"<?xml version="1.0"?><TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">
<Activities><Activity Sport="Biking"><Id>2026-06-02T06:30:00Z</Id>
<Lap StartTime="x"><DistanceMeters>999</DistanceMeters><Track>{}{}</Track><Track>{}</Track></Lap>
<Lap StartTime="y"><Track>{}</Track></Lap></Activity></Activities></TrainingCenterDatabase>"#,
        point("2026-06-02T06:30:00Z", 46.0, "<Cadence>85</Cadence>"),
        point("2026-06-02T06:30:01Z", 46.001, "<Extensions><TPX><Watts>210</Watts></TPX></Extensions>"),
        point("2026-06-02T06:30:02Z", 46.002, ""),
        point("2026-06-02T06:30:03Z", 46.003, ""),
    );
    let track = read(tcx.as_bytes()).unwrap();
    assert_eq!(track.format, Some(Format::Tcx));
    assert_eq!(track.sport.as_deref(), Some("Biking"));
    let segments: Vec<u32> = track.points.iter().map(|p| p.segment).collect();
    assert_eq!(segments, vec![0, 0, 1, 1]);
    let first = track.points[0];
    assert_eq!(first.device_distance, Some(12.5));
    assert_eq!((first.heart_rate, first.cadence, first.elevation), (Some(131), Some(85), Some(301.0)));
    assert_eq!(track.points[1].power, Some(210));
}

fn record(seconds: i64, lat: f64) -> FitMessage {
    FitMessage::Record(Point {
        time_ns: at(seconds),
        position: Some((lat, 14.0)),
        elevation: Some(300.0 + seconds as f64),
        device_distance: Some(seconds as f64 * 3.0),
        heart_rate: Some(140),
        cadence: Some(88),
        power: Some(200),
        segment: 0,
    })
}

#[test]
fn fit_records_events_and_sessions_are_read() {
    let file = fit_file(&[
        FitMessage::Timer { unix_s: T0, event: TimerEvent::Start },
        record(0, 46.0),
        record(1, 46.0001),
        FitMessage::Timer { unix_s: T0 + 1, event: TimerEvent::StopAll },
        FitMessage::Timer { unix_s: T0 + 60, event: TimerEvent::Start },
        record(60, 46.0002),
        FitMessage::Session { sport: 2 },
        FitMessage::Session { sport: 1 },
    ]);
    let track = parse(&file).unwrap();
    assert_eq!(track.format, Some(Format::Fit));
    assert_eq!(track.sport.as_deref(), Some("cycling"), "the first session's sport");
    assert_eq!(track.points.len(), 3);
    let segments: Vec<u32> = track.points.iter().map(|p| p.segment).collect();
    assert_eq!(segments, vec![0, 0, 1]);
    let p = track.points[1];
    assert_eq!(p.time_ns, at(1));
    let (lat, lon) = p.position.unwrap();
    // Semicircles hold about 8 nano-degrees.
    assert!((lat - 46.0001).abs() < 1e-7 && (lon - 14.0).abs() < 1e-7, "{lat} {lon}");
    assert_eq!(
        (p.elevation, p.device_distance, p.heart_rate, p.cadence, p.power),
        (Some(301.0), Some(3.0), Some(140), Some(88), Some(200))
    );
}

#[test]
fn fit_with_a_bad_crc_or_cut_short_is_invalid() {
    let mut file = fit_file(&[record(0, 46.0), record(1, 46.001)]);
    assert!(parse(&file).is_ok());
    let n = file.len();
    assert_eq!(parse(&file[..n - 7]).unwrap_err().code(), "invalid_file");
    file[n - 3] ^= 0x01; // a data byte changed, the CRC kept
    assert_eq!(parse(&file).unwrap_err().code(), "invalid_file");
    assert_eq!(crc(b"123456789"), 0xBB3D, "FIT's CRC is CRC-16/ARC");
}

#[test]
fn absent_fit_values_are_absent_and_hr_zero_is_absent() {
    let file = fit_file(&[FitMessage::Record(Point { time_ns: at(0), heart_rate: Some(0), ..Point::default() })]);
    let track = parse(&file).unwrap();
    assert_eq!(track.points, vec![Point { time_ns: at(0), ..Point::default() }]);
}
