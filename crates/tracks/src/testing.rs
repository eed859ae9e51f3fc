//! Writers for tests, fuzz seeds and benchmarks: a minimal FIT encoder (file_id, event,
//! record and session messages, with the real CRC) and a GPX document builder. Nothing in
//! the product writes FIT; these exist so tests can make files nobody here parsed before.

use std::fmt::Write;

use crate::Point;

/// Seconds between the Unix epoch and FIT's (1989-12-31T00:00:00Z).
pub const FIT_EPOCH_OFFSET_S: i64 = 631_065_600;

/// A FIT timer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerEvent {
    Start,
    Stop,
    StopAll,
}

/// One message to write.
#[derive(Debug, Clone, PartialEq)]
pub enum FitMessage {
    Record(Point),
    Timer {
        unix_s: i64,
        event: TimerEvent,
    },
    /// FIT sport enum: 1 running, 2 cycling, 5 swimming, 11 walking, 17 hiking.
    Session {
        sport: u8,
    },
}

/// Encodes a FIT activity file; record times are whole seconds (FIT's resolution).
pub fn fit_file(messages: &[FitMessage]) -> Vec<u8> {
    let mut data = Vec::new();
    // file_id: type = activity (4), local 0.
    define(&mut data, 0, 0, &[(0, 1, 0x00)]);
    data.extend_from_slice(&[0, 4]);
    define(
        &mut data,
        1,
        20,
        &[
            (253, 4, 0x86),
            (0, 4, 0x85),
            (1, 4, 0x85),
            (78, 4, 0x86),
            (3, 1, 0x02),
            (4, 1, 0x02),
            (5, 4, 0x86),
            (7, 2, 0x84),
        ],
    );
    define(&mut data, 2, 21, &[(253, 4, 0x86), (0, 1, 0x00), (1, 1, 0x00)]);
    define(&mut data, 3, 18, &[(5, 1, 0x00)]);
    for message in messages {
        match message {
            FitMessage::Record(p) => {
                data.push(1);
                let t = p.time_ns.map_or(u32::MAX, |ns| (ns / 1_000_000_000 - FIT_EPOCH_OFFSET_S) as u32);
                data.extend_from_slice(&t.to_le_bytes());
                let (lat, lon) =
                    p.position.map_or((i32::MAX, i32::MAX), |(lat, lon)| (semicircles(lat), semicircles(lon)));
                data.extend_from_slice(&lat.to_le_bytes());
                data.extend_from_slice(&lon.to_le_bytes());
                let alt = p.elevation.map_or(u32::MAX, |e| ((e + 500.0) * 5.0).round() as u32);
                data.extend_from_slice(&alt.to_le_bytes());
                data.push(p.heart_rate.unwrap_or(0xff));
                data.push(p.cadence.unwrap_or(0xff));
                let distance = p.device_distance.map_or(u32::MAX, |d| (d * 100.0).round() as u32);
                data.extend_from_slice(&distance.to_le_bytes());
                data.extend_from_slice(&p.power.unwrap_or(u16::MAX).to_le_bytes());
            }
            FitMessage::Timer { unix_s, event } => {
                data.push(2);
                data.extend_from_slice(&((unix_s - FIT_EPOCH_OFFSET_S) as u32).to_le_bytes());
                let kind = match event {
                    TimerEvent::Start => 0,
                    TimerEvent::Stop => 1,
                    TimerEvent::StopAll => 4,
                };
                data.extend_from_slice(&[0, kind]);
            }
            FitMessage::Session { sport } => data.extend_from_slice(&[3, *sport]),
        }
    }
    let mut file = vec![14u8, 0x20];
    file.extend_from_slice(&2132u16.to_le_bytes());
    file.extend_from_slice(&(data.len() as u32).to_le_bytes());
    file.extend_from_slice(b".FIT");
    let header_crc = crc(&file);
    file.extend_from_slice(&header_crc.to_le_bytes());
    file.extend_from_slice(&data);
    let file_crc = crc(&file);
    file.extend_from_slice(&file_crc.to_le_bytes());
    file
}

fn semicircles(degrees: f64) -> i32 {
    (degrees * 2_147_483_648.0 / 180.0).round() as i32
}

fn define(out: &mut Vec<u8>, local: u8, global: u16, fields: &[(u8, u8, u8)]) {
    out.extend_from_slice(&[0x40 | local, 0, 0]);
    out.extend_from_slice(&global.to_le_bytes());
    out.push(fields.len() as u8);
    for &(number, size, base) in fields {
        out.extend_from_slice(&[number, size, base]);
    }
}

/// FIT's CRC-16, as its specification gives it.
pub fn crc(bytes: &[u8]) -> u16 {
    const TABLE: [u16; 16] = [
        0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401, 0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01,
        0x8801, 0x4400,
    ];
    let mut crc = 0u16;
    for &byte in bytes {
        let mut tmp = TABLE[(crc & 0xF) as usize];
        crc = (crc >> 4) & 0x0FFF;
        crc = crc ^ tmp ^ TABLE[(byte & 0xF) as usize];
        tmp = TABLE[(crc & 0xF) as usize];
        crc = (crc >> 4) & 0x0FFF;
        crc = crc ^ tmp ^ TABLE[((byte >> 4) & 0xF) as usize];
    }
    crc
}

/// A GPX 1.1 document of `points` (one `trkseg` per segment), with an optional name and type.
pub fn gpx_file(points: &[Point], name: Option<&str>, kind: Option<&str>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" xmlns=\"http://www.topografix.com/GPX/1/1\" xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v1\"><trk>",
    );
    if let Some(name) = name {
        let _ = write!(out, "<name>{name}</name>");
    }
    if let Some(kind) = kind {
        let _ = write!(out, "<type>{kind}</type>");
    }
    let mut segment = None;
    for p in points {
        if segment != Some(p.segment) {
            if segment.is_some() {
                out.push_str("</trkseg>");
            }
            out.push_str("<trkseg>");
            segment = Some(p.segment);
        }
        let (lat, lon) = p.position.unwrap_or((0.0, 0.0));
        let _ = write!(out, "<trkpt lat=\"{lat}\" lon=\"{lon}\">");
        if let Some(e) = p.elevation {
            let _ = write!(out, "<ele>{e}</ele>");
        }
        if let Some(t) = p.time_ns {
            let at = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(t);
            let _ = write!(out, "<time>{}</time>", at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        if let Some(hr) = p.heart_rate {
            let _ = write!(
                out,
                "<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{hr}</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions>"
            );
        }
        out.push_str("</trkpt>");
    }
    if segment.is_some() {
        out.push_str("</trkseg>");
    }
    out.push_str("</trk></gpx>\n");
    out
}

/// A run around `origin` of `n` points one second apart, about 3 m/s, with rolling
/// elevation and heart rate: the shape real tracks have.
pub fn synthetic_run(n: usize, origin: (f64, f64), start_unix_s: i64) -> Vec<Point> {
    (0..n)
        .map(|i| {
            let f = i as f64;
            let angle = f / 600.0;
            let radius = 0.004 + 0.0005 * (f / 97.0).sin();
            Point {
                time_ns: Some((start_unix_s + i as i64) * 1_000_000_000),
                position: Some((
                    ((origin.0 + radius * angle.sin() + f * 1e-6) * 1e7).round() / 1e7,
                    ((origin.1 + radius * angle.cos() * 1.4) * 1e7).round() / 1e7,
                )),
                elevation: Some(((300.0 + 25.0 * (f / 400.0).sin() + 2.0 * (f / 7.0).sin()) * 10.0).round() / 10.0),
                heart_rate: Some((140.0 + 15.0 * (f / 300.0).sin()) as u8),
                ..Point::default()
            }
        })
        .collect()
}

/// One fuzz case: `data` read as `format` (and, gunzipped, as whatever it is); a track read
/// must measure, store, load and export, and its export must read again.
pub fn fuzz_one(format: crate::Format, data: &[u8]) {
    let _ = crate::read(data);
    let Ok(track) = crate::parse_as(format, data) else { return };
    let _ = crate::Summary::compute(&track.points);
    let streams = crate::Streams::from_points(track.points);
    let _ = crate::route(&streams.positions());
    let stored = crate::encode_points(&streams);
    let loaded = crate::decode_points(&stored).expect("stored points load");
    assert_eq!(loaded.points.len(), streams.points.len());
    let gpx = crate::to_gpx(&loaded, "fuzz", "other");
    assert!(crate::read(gpx.as_bytes()).is_ok(), "an export reads again");
}

/// A TCX document of `points` as one lap, with the sport named.
pub fn tcx_file(points: &[Point], sport: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\"?>\n<TrainingCenterDatabase xmlns=\"http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2\"><Activities><Activity Sport=\"{sport}\"><Lap><Track>"
    );
    for p in points {
        out.push_str("<Trackpoint>");
        if let Some(t) = p.time_ns {
            let at = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(t);
            let _ = write!(out, "<Time>{}</Time>", at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        if let Some((lat, lon)) = p.position {
            let _ = write!(
                out,
                "<Position><LatitudeDegrees>{lat}</LatitudeDegrees><LongitudeDegrees>{lon}</LongitudeDegrees></Position>"
            );
        }
        if let Some(e) = p.elevation {
            let _ = write!(out, "<AltitudeMeters>{e}</AltitudeMeters>");
        }
        out.push_str("</Trackpoint>");
    }
    out.push_str("</Track></Lap></Activity></Activities></TrainingCenterDatabase>\n");
    out
}

/// `bytes` gzipped, as Strava stores its tracks.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// One entry of a test archive.
pub enum ZipEntry<'a> {
    File(&'a str, &'a [u8]),
    /// A symbolic link named `.0` pointing at `.1`.
    Symlink(&'a str, &'a str),
}

/// A zip archive of `entries`, deflated, in the order given.
pub fn zip_file(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for entry in entries {
        match entry {
            ZipEntry::File(name, bytes) => {
                writer.start_file(*name, options).expect("a new entry");
                writer.write_all(bytes).expect("writing to memory");
            }
            ZipEntry::Symlink(name, target) => writer.add_symlink(*name, *target, options).expect("a new link"),
        }
    }
    writer.finish().expect("finishing in memory").into_inner()
}
