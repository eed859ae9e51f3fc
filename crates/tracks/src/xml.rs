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
    // quick-xml checks each event's text is UTF-8 as it reads it (a malformed file fails
    // there), so the whole input is not validated once more up front.
    let bytes = plain.strip_prefix(b"\xef\xbb\xbf").unwrap_or(plain);
    let mut reader = Reader::from_reader(bytes);
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
                // Whitespace between elements reaches the readers too; they keep text only for
                // the leaves they read, and trim it there.
                if depth > 0 {
                    visit(Node::Text(&content.into_inner()))?;
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
    if let Some(nanos) = utc_fast_path(raw.as_bytes()) {
        return Some(nanos);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw) {
        return at.timestamp_nanos_opt();
    }
    let naive = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    naive.and_utc().timestamp_nanos_opt()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, what nearly every device writes, without chrono's
/// general parser (a third of a 100,000-point file's parse time went there). Anything else
/// (offsets, odd digits, out-of-range fields) returns `None` and takes the general path.
fn utc_fast_path(raw: &[u8]) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        raw.get(range)?.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    };
    if raw.len() < 20 || raw[4] != b'-' || raw[7] != b'-' || raw[10] != b'T' || raw[13] != b':' || raw[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut nanos = 0i64;
    let rest = &raw[19..];
    let rest = match rest.split_first() {
        Some((b'.', fraction)) => {
            let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if count == 0 || count > 9 {
                return None;
            }
            nanos = digits(20..20 + count)? * 10i64.pow(9 - count as u32);
            &fraction[count..]
        }
        _ => rest,
    };
    if rest != b"Z" || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    let seconds = date.and_hms_opt(hour as u32, minute as u32, second as u32)?.and_utc().timestamp();
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
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

/// The `lat` and `lon` attributes of `start`, read in one pass over its attributes (without
/// quick-xml's duplicate check, which keeps a list of every key per element: a duplicated
/// `lat` reads as its first value).
pub(crate) fn lat_lon(start: &BytesStart<'_>) -> Result<Option<(f64, f64)>, TrackError> {
    let (mut lat, mut lon) = (None, None);
    for attribute in start.attributes().with_checks(false) {
        let attribute = attribute.map_err(|e| TrackError::invalid(format!("malformed attribute: {e}")))?;
        let slot = match attribute.key.local_name().into_inner() {
            "lat" => &mut lat,
            "lon" => &mut lon,
            _ => continue,
        };
        if slot.is_none() {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| TrackError::invalid(format!("attribute: {e}")))?;
            let number =
                parse_number(&value).ok_or_else(|| TrackError::invalid("a latitude or longitude is not a number"))?;
            *slot = Some(number);
        }
    }
    position(lat, lon)
}

/// The attribute `name` of `start` as text.
pub(crate) fn text_attribute(start: &BytesStart<'_>, name: &str) -> Option<String> {
    let attribute = start.try_get_attribute(name).ok()??;
    attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|value| value.into_owned())
}

pub(crate) fn too_many_points() -> TrackError {
    TrackError::TooLarge(format!("the track has over {} points", crate::MAX_POINTS))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn the_fast_path_and_the_general_parser_agree() {
        for raw in [
            "2026-06-02T06:30:00Z",
            "2026-06-02T06:30:00.5Z",
            "2026-06-02T06:30:00.123456789Z",
            "1999-12-31T23:59:59.000Z",
            "2024-02-29T12:00:00Z",
        ] {
            let general = chrono::DateTime::parse_from_rfc3339(raw).unwrap().timestamp_nanos_opt();
            assert_eq!(parse_time(raw), general, "{raw}");
            assert_eq!(super::utc_fast_path(raw.as_bytes()), general, "{raw}");
        }
        for odd in ["2026-02-30T06:30:00Z", "2026-06-02T24:00:00Z", "2026-06-02T06:30:00.Z", "2026-06-02 06:30:00Z"] {
            assert_eq!(super::utc_fast_path(odd.as_bytes()), None, "{odd}");
        }
        assert_eq!(parse_time("2026-06-02T08:30:00+02:00"), parse_time("2026-06-02T06:30:00Z"));
        assert_eq!(parse_time("2026-06-02T06:30:00"), parse_time("2026-06-02T06:30:00Z"), "no zone reads as UTC");
        assert_eq!(parse_time("yesterday"), None);
    }
}
