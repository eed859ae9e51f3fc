//! GPX 1.1 export: every point that has a position, one `trkseg` per segment, with time,
//! elevation (shortest exact decimal), heart rate and cadence in Garmin's
//! TrackPointExtension, power beside it. Coordinates carry 7 decimals (about 1 cm).

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::Streams;

/// The GPX document of `streams` (already cut to what the reader may see).
pub fn to_gpx(streams: &Streams, name: &str, sport: &str) -> String {
    let mut out = String::with_capacity(streams.points.len() * 160 + 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(
        "<gpx version=\"1.1\" creator=\"Stride\" xmlns=\"http://www.topografix.com/GPX/1/1\" \
         xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v1\">\n",
    );
    let name = escape(name);
    let _ = write!(
        out,
        " <metadata><name>{name}</name></metadata>\n <trk>\n  <name>{name}</name>\n  <type>{sport}</type>\n"
    );
    let mut segment = None;
    for point in &streams.points {
        let Some((lat, lon)) = point.position else { continue };
        if segment != Some(point.segment) {
            if segment.is_some() {
                out.push_str("  </trkseg>\n");
            }
            out.push_str("  <trkseg>\n");
            segment = Some(point.segment);
        }
        let _ = write!(out, "   <trkpt lat=\"{lat:.7}\" lon=\"{lon:.7}\">");
        if let Some(elevation) = point.elevation {
            let _ = write!(out, "<ele>{elevation}</ele>");
        }
        if let Some(time) = point.time_ns {
            let at = DateTime::<Utc>::from_timestamp_nanos(time);
            let _ = write!(out, "<time>{}</time>", at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        if point.heart_rate.is_some() || point.cadence.is_some() || point.power.is_some() {
            out.push_str("<extensions>");
            if let Some(power) = point.power {
                let _ = write!(out, "<power>{power}</power>");
            }
            if point.heart_rate.is_some() || point.cadence.is_some() {
                out.push_str("<gpxtpx:TrackPointExtension>");
                if let Some(hr) = point.heart_rate {
                    let _ = write!(out, "<gpxtpx:hr>{hr}</gpxtpx:hr>");
                }
                if let Some(cadence) = point.cadence {
                    let _ = write!(out, "<gpxtpx:cad>{cadence}</gpxtpx:cad>");
                }
                out.push_str("</gpxtpx:TrackPointExtension>");
            }
            out.push_str("</extensions>");
        }
        out.push_str("</trkpt>\n");
    }
    if segment.is_some() {
        out.push_str("  </trkseg>\n");
    }
    out.push_str(" </trk>\n</gpx>\n");
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
