//! GPX 1.0 and 1.1: every `trkpt` of every `trkseg` in file order; heart rate, cadence and
//! power from any extension element of that local name (Garmin's TrackPointExtension and its
//! copies), so a file's own namespace prefix does not matter.

use crate::xml::{Node, lat_lon, parse_number, parse_time, too_many_points, walk};
use crate::{MAX_POINTS, Point, Track, TrackError, heart_rate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Gpx,
    Metadata,
    Name,
    Trk,
    Type,
    Trkseg,
    Trkpt,
    Ele,
    Time,
    Hr,
    Cad,
    Power,
    Other,
}

fn tag(name: &str) -> Tag {
    match name {
        "gpx" => Tag::Gpx,
        "metadata" => Tag::Metadata,
        "name" => Tag::Name,
        "trk" => Tag::Trk,
        "type" => Tag::Type,
        "trkseg" => Tag::Trkseg,
        "trkpt" => Tag::Trkpt,
        "ele" => Tag::Ele,
        "time" => Tag::Time,
        "hr" => Tag::Hr,
        "cad" => Tag::Cad,
        "power" => Tag::Power,
        _ => Tag::Other,
    }
}

pub(crate) fn parse(plain: &[u8]) -> Result<Track, TrackError> {
    let mut track = Track::default();
    let mut metadata_name = None;
    let mut stack: Vec<Tag> = Vec::with_capacity(16);
    let mut text = String::new();
    let mut point: Option<Point> = None;
    let mut segment = 0u32;
    let mut segments_seen = 0u32;
    let mut tracks_seen = 0u32;
    walk(plain, |node| {
        match node {
            Node::Open(name, start) => {
                let tag = tag(name);
                match tag {
                    Tag::Trk => tracks_seen += 1,
                    Tag::Trkseg => {
                        segment = segments_seen;
                        segments_seen += 1;
                    }
                    Tag::Trkpt if stack.last() == Some(&Tag::Trkseg) => {
                        let at = lat_lon(start)?;
                        point = Some(Point { position: at, segment, ..Point::default() });
                    }
                    _ => {}
                }
                stack.push(tag);
                text.clear();
            }
            Node::Text(piece) => {
                if matches!(
                    stack.last(),
                    Some(Tag::Name | Tag::Type | Tag::Ele | Tag::Time | Tag::Hr | Tag::Cad | Tag::Power)
                ) {
                    text.push_str(piece);
                }
            }
            Node::Close => {
                let Some(tag) = stack.pop() else { return Ok(()) };
                let parent = stack.last().copied();
                match (tag, point.as_mut()) {
                    (Tag::Trkpt, Some(_)) if parent == Some(Tag::Trkseg) => {
                        if track.points.len() >= MAX_POINTS {
                            return Err(too_many_points());
                        }
                        track.points.extend(point.take());
                    }
                    (Tag::Ele, Some(p)) if parent == Some(Tag::Trkpt) => p.elevation = parse_number(&text),
                    (Tag::Time, Some(p)) if parent == Some(Tag::Trkpt) => p.time_ns = parse_time(&text),
                    (Tag::Hr, Some(p)) => p.heart_rate = parse_number(&text).and_then(heart_rate),
                    (Tag::Cad, Some(p)) => p.cadence = parse_number(&text).and_then(byte),
                    (Tag::Power, Some(p)) => p.power = parse_number(&text).and_then(word),
                    (Tag::Name, None) if parent == Some(Tag::Trk) && tracks_seen == 1 => {
                        track.name.get_or_insert_with(|| text.trim().to_owned());
                    }
                    (Tag::Name, None) if matches!(parent, Some(Tag::Metadata | Tag::Gpx)) && stack.len() <= 2 => {
                        metadata_name.get_or_insert_with(|| text.trim().to_owned());
                    }
                    (Tag::Type, None) if parent == Some(Tag::Trk) && tracks_seen == 1 => {
                        track.sport.get_or_insert_with(|| text.trim().to_owned());
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    if track.name.as_deref().is_none_or(str::is_empty) {
        track.name = metadata_name.filter(|name| !name.is_empty());
    }
    Ok(track)
}

pub(crate) fn byte(value: f64) -> Option<u8> {
    (0.0..=254.0).contains(&value).then(|| value.round() as u8)
}

pub(crate) fn word(value: f64) -> Option<u16> {
    (0.0..=65_534.0).contains(&value).then(|| value.round() as u16)
}
