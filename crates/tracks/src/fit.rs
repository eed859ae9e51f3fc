//! FIT: `record` messages in file order; a timer `stop`, `stop_all`, `stop_disable` or
//! `stop_disable_all` event followed by `start` begins a new segment. Altitude is
//! `enhanced_altitude`, else `altitude`; positions are semicircles × 180 / 2^31. The sport is
//! the first session's (else the first `sport` message's). Messages are decoded by fitparser,
//! which checks the header's and the file's CRC; chained files are read one after another.

use fitparser::Value;
use fitparser::de::{FitObject, FitStreamProcessor};
use fitparser::profile::MesgNum;

use crate::gpx::{byte, word};
use crate::{MAX_POINTS, Point, Track, TrackError, heart_rate, xml::too_many_points};

const SEMICIRCLES_TO_DEGREES: f64 = 180.0 / 2_147_483_648.0;

pub(crate) fn parse(plain: &[u8]) -> Result<Track, TrackError> {
    let mut processor = FitStreamProcessor::new();
    let mut buffer = plain;
    let mut track = Track::default();
    let mut segment = 0u32;
    let mut stopped = false;
    let mut session_sport = None;
    let mut sport_message = None;
    let mut at_header = true;
    while !buffer.is_empty() {
        if at_header {
            // fitparser computes how much of a short header is missing by a subtraction that
            // overflows on a header byte smaller than what is there: such a file is refused here.
            check_header(buffer)?;
            at_header = false;
        }
        let (rest, object) = processor.deserialize_next(buffer).map_err(invalid)?;
        buffer = rest;
        let message = match object {
            FitObject::Crc(_) => {
                processor.reset();
                at_header = true;
                continue;
            }
            FitObject::DataMessage(message) => message,
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => continue,
        };
        let record = processor.decode_message(message).map_err(invalid)?;
        match record.kind() {
            MesgNum::Record => {
                if track.points.len() >= MAX_POINTS {
                    return Err(too_many_points());
                }
                track.points.push(point(record.fields(), segment));
            }
            MesgNum::Event => {
                let text =
                    |name: &str| record.fields().iter().find(|f| f.name() == name).map(|f| f.value().to_string());
                if text("event").as_deref() == Some("timer") {
                    match text("event_type").as_deref() {
                        Some("stop" | "stop_all" | "stop_disable" | "stop_disable_all") => stopped = true,
                        Some("start") if stopped => {
                            stopped = false;
                            segment += 1;
                        }
                        _ => {}
                    }
                }
            }
            MesgNum::Session if session_sport.is_none() => session_sport = sport(record.fields()),
            MesgNum::Sport if sport_message.is_none() => sport_message = sport(record.fields()),
            _ => {}
        }
    }
    track.sport = session_sport.or(sport_message);
    Ok(track)
}

/// A FIT header: its size (12 or 14), the `.FIT` tag, and a file as long as it says.
fn check_header(buffer: &[u8]) -> Result<(), TrackError> {
    let size = usize::from(*buffer.first().unwrap_or(&0));
    if !matches!(size, 12 | 14) || buffer.len() < size || &buffer[8..12] != b".FIT" {
        return Err(TrackError::invalid("not a FIT header (or a truncated one)"));
    }
    let data = u32::from_le_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]) as usize;
    if buffer.len() < size + data + 2 {
        return Err(TrackError::invalid("the FIT file is truncated"));
    }
    Ok(())
}

fn invalid(error: fitparser::Error) -> TrackError {
    TrackError::invalid(format!("malformed FIT file: {error}"))
}

fn sport(fields: &[fitparser::FitDataField]) -> Option<String> {
    fields.iter().find(|f| f.name() == "sport").map(|f| f.value().to_string())
}

fn point(fields: &[fitparser::FitDataField], segment: u32) -> Point {
    let mut point = Point { segment, ..Point::default() };
    let (mut lat, mut lon, mut altitude, mut enhanced) = (None, None, None, None);
    for field in fields {
        let value = field.value();
        match field.name() {
            "timestamp" => {
                if let Value::Timestamp(at) = value {
                    point.time_ns = at.timestamp_nanos_opt();
                }
            }
            "position_lat" => lat = semicircles(value),
            "position_long" => lon = semicircles(value),
            "altitude" => altitude = number(value),
            "enhanced_altitude" => enhanced = number(value),
            "distance" => point.device_distance = number(value),
            "heart_rate" => point.heart_rate = number(value).and_then(heart_rate),
            "cadence" => point.cadence = number(value).and_then(byte),
            "power" => point.power = number(value).and_then(word),
            _ => {}
        }
    }
    point.elevation = enhanced.or(altitude);
    if let (Some(lat), Some(lon)) = (lat, lon)
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
    {
        point.position = Some((lat, lon));
    }
    point
}

fn semicircles(value: &Value) -> Option<f64> {
    match value {
        Value::SInt32(v) if *v != i32::MAX => Some(f64::from(*v) * SEMICIRCLES_TO_DEGREES),
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    let v = match value {
        Value::Float64(v) => *v,
        Value::Float32(v) => f64::from(*v),
        Value::UInt8(v) | Value::UInt8z(v) | Value::Byte(v) | Value::Enum(v) => f64::from(*v),
        Value::SInt8(v) => f64::from(*v),
        Value::UInt16(v) | Value::UInt16z(v) => f64::from(*v),
        Value::SInt16(v) => f64::from(*v),
        Value::UInt32(v) | Value::UInt32z(v) => f64::from(*v),
        Value::SInt32(v) => f64::from(*v),
        _ => return None,
    };
    v.is_finite().then_some(v)
}
