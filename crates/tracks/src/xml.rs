//! The XML walk GPX and TCX share: elements by local name (namespace prefixes ignored), text
//! with the predefined and character references resolved, and every DTD refused.
//!
//! A `<!DOCTYPE` is refused where it is met, before anything it declares could be expanded;
//! an entity reference other than the five predefined ones and character references can then
//! only be undeclared, and is refused too. Nothing is ever fetched or expanded.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::TrackError;

/// What the walk reports to a format's reader.
pub(crate) enum Node<'e> {
    Open(&'e str, &'e BytesStart<'e>),
    /// Text inside the innermost open element (may come in pieces around references).
    Text(&'e str),
    Close,
}

pub(crate) fn walk(plain: &[u8], mut visit: impl FnMut(Node<'_>) -> Result<(), TrackError>) -> Result<(), TrackError> {
    let text = std::str::from_utf8(plain).map_err(|e| TrackError::invalid(format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| TrackError::invalid(format!("malformed XML at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::DocType(_) => return Err(TrackError::invalid("a DOCTYPE declaration is refused")),
            Event::Start(start) => {
                depth += 1;
                seen_root = true;
                visit(Node::Open(local(&start), &start))?;
            }
            Event::Empty(start) => {
                seen_root = true;
                visit(Node::Open(local(&start), &start))?;
                visit(Node::Close)?;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                visit(Node::Close)?;
            }
            Event::Text(content) => {
                let content = content.into_inner();
                if depth > 0 && !content.trim().is_empty() {
                    visit(Node::Text(&content))?;
                }
            }
            Event::CData(content) => {
                let content = content.into_inner();
                visit(Node::Text(&content))?;
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve(&reference)?;
                let mut buf = [0u8; 4];
                visit(Node::Text(resolved.encode_utf8(&mut buf)))?;
            }
            Event::Eof => {
                if depth > 0 || !seen_root {
                    return Err(TrackError::invalid("the XML document is truncated"));
                }
                return Ok(());
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

fn local<'e>(start: &'e BytesStart<'_>) -> &'e str {
    start.local_name().into_inner()
}

fn resolve(reference: &quick_xml::events::BytesRef<'_>) -> Result<char, TrackError> {
    if reference.is_char_ref() {
        return reference
            .resolve_char_ref()
            .ok()
            .flatten()
            .ok_or_else(|| TrackError::invalid("an invalid character reference"));
    }
    match &*reference.clone().into_inner() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(TrackError::invalid(format!("the entity reference &{other}; is refused"))),
    }
}

/// A GPX or TCX time: RFC 3339, or without an offset read as UTC (as the GPX schema means
/// `xsd:dateTime` without a zone in practice). Unreadable times are absent.
pub(crate) fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw) {
        return at.timestamp_nanos_opt();
    }
    let naive = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    naive.and_utc().timestamp_nanos_opt()
}

/// A finite number, else absent.
pub(crate) fn parse_number(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A latitude/longitude pair in range, or why not.
pub(crate) fn position(lat: Option<f64>, lon: Option<f64>) -> Result<Option<(f64, f64)>, TrackError> {
    match (lat, lon) {
        (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
            Ok(Some((lat, lon)))
        }
        (None, None) => Ok(None),
        _ => Err(TrackError::invalid("a point's latitude or longitude is missing or out of range")),
    }
}

/// The attribute `name` of `start` as a number, when present and readable.
pub(crate) fn number_attribute(start: &BytesStart<'_>, name: &str) -> Result<Option<f64>, TrackError> {
    match start.try_get_attribute(name) {
        Ok(Some(attribute)) => {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| TrackError::invalid(format!("attribute {name}: {e}")))?;
            parse_number(&value)
                .map(Some)
                .ok_or_else(|| TrackError::invalid(format!("attribute {name} is not a number")))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(TrackError::invalid(format!("malformed attribute: {e}"))),
    }
}

/// The attribute `name` of `start` as text.
pub(crate) fn text_attribute(start: &BytesStart<'_>, name: &str) -> Option<String> {
    let attribute = start.try_get_attribute(name).ok()??;
    attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|value| value.into_owned())
}

pub(crate) fn too_many_points() -> TrackError {
    TrackError::TooLarge(format!("the track has over {} points", crate::MAX_POINTS))
}
