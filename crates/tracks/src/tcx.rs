//! TCX (Garmin Training Center XML): every `Trackpoint` in file order. A new `Track` inside
//! the same `Lap` starts a new segment (a pause); consecutive laps continue one segment.

use crate::gpx::{byte, word};
use crate::xml::{Node, parse_number, parse_time, position, text_attribute, too_many_points, walk};
use crate::{MAX_POINTS, Point, Track, TrackError, heart_rate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Activity,
    Lap,
    Track,
    Trackpoint,
    Time,
    Position,
    Latitude,
    Longitude,
    Altitude,
    Distance,
    HeartRate,
    Value,
    Cadence,
    Watts,
    Other,
}

fn tag(name: &str) -> Tag {
    match name {
        "Activity" => Tag::Activity,
        "Lap" => Tag::Lap,
        "Track" => Tag::Track,
        "Trackpoint" => Tag::Trackpoint,
        "Time" => Tag::Time,
        "Position" => Tag::Position,
        "LatitudeDegrees" => Tag::Latitude,
        "LongitudeDegrees" => Tag::Longitude,
        "AltitudeMeters" => Tag::Altitude,
        "DistanceMeters" => Tag::Distance,
        "HeartRateBpm" => Tag::HeartRate,
        "Value" => Tag::Value,
        "Cadence" => Tag::Cadence,
        "Watts" => Tag::Watts,
        _ => Tag::Other,
    }
}

pub(crate) fn parse(plain: &[u8]) -> Result<Track, TrackError> {
    let mut track = Track::default();
    let mut stack: Vec<Tag> = Vec::with_capacity(16);
    let mut text = String::new();
    let mut point: Option<Point> = None;
    let mut latitude = None;
    let mut longitude = None;
    let mut segment = 0u32;
    let mut tracks_in_lap = 0u32;
    walk(plain, |node| {
        match node {
            Node::Open(name, start) => {
                let tag = tag(name);
                match tag {
                    Tag::Activity if track.sport.is_none() => track.sport = text_attribute(start, "Sport"),
                    Tag::Lap => tracks_in_lap = 0,
                    Tag::Track => {
                        if tracks_in_lap > 0 {
                            segment += 1;
                        }
                        tracks_in_lap += 1;
                    }
                    Tag::Trackpoint if stack.last() == Some(&Tag::Track) => {
                        point = Some(Point { segment, ..Point::default() });
                        (latitude, longitude) = (None, None);
                    }
                    _ => {}
                }
                stack.push(tag);
                text.clear();
            }
            Node::Text(piece) => {
                if !matches!(
                    stack.last(),
                    None | Some(Tag::Other | Tag::Activity | Tag::Lap | Tag::Track | Tag::Trackpoint | Tag::Position)
                ) {
                    text.push_str(piece);
                }
            }
            Node::Close => {
                let Some(tag) = stack.pop() else { return Ok(()) };
                let parent = stack.last().copied();
                let Some(p) = point.as_mut() else { return Ok(()) };
                match tag {
                    Tag::Trackpoint => {
                        p.position = position(latitude, longitude)?;
                        if track.points.len() >= MAX_POINTS {
                            return Err(too_many_points());
                        }
                        track.points.extend(point.take());
                    }
                    Tag::Time if parent == Some(Tag::Trackpoint) => p.time_ns = parse_time(&text),
                    Tag::Latitude if parent == Some(Tag::Position) => latitude = parse_number(&text),
                    Tag::Longitude if parent == Some(Tag::Position) => longitude = parse_number(&text),
                    Tag::Altitude if parent == Some(Tag::Trackpoint) => p.elevation = parse_number(&text),
                    Tag::Distance if parent == Some(Tag::Trackpoint) => p.device_distance = parse_number(&text),
                    Tag::Value if parent == Some(Tag::HeartRate) => {
                        p.heart_rate = parse_number(&text).and_then(heart_rate);
                    }
                    Tag::Cadence if parent == Some(Tag::Trackpoint) => p.cadence = parse_number(&text).and_then(byte),
                    Tag::Watts => p.power = parse_number(&text).and_then(word),
                    _ => {}
                }
            }
        }
        Ok(())
    })?;
    Ok(track)
}
