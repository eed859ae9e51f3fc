//! Recognising a file from its bytes (never its name) and unwrapping gzip under a cap.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;

use crate::{Track, TrackError, fit, gpx, tcx};

/// A file's size once gunzipped may not exceed this (an item past it fails as `too_large`).
pub const MAX_INFLATED_BYTES: u64 = 100 * 1024 * 1024;

/// How much of a gzipped file is inflated to recognise what it holds.
const SNIFF_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Gpx,
    Tcx,
    Fit,
}

impl Format {
    /// As the activity's `source` shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Gpx => "gpx",
            Format::Tcx => "tcx",
            Format::Fit => "fit",
        }
    }
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// What `bytes` holds, gzipped or not; `None` when it is none of the track formats.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if is_gzip(bytes) {
        let mut prefix = Vec::new();
        // A truncated or corrupt stream still shows its first bytes; parsing reports the rest.
        let _ = GzDecoder::new(bytes).take(SNIFF_BYTES).read_to_end(&mut prefix);
        return detect_plain(&prefix);
    }
    detect_plain(bytes)
}

fn detect_plain(bytes: &[u8]) -> Option<Format> {
    if bytes.len() >= 12 && matches!(bytes[0], 12 | 14) && &bytes[8..12] == b".FIT" {
        return Some(Format::Fit);
    }
    match root_element(bytes)? {
        b"gpx" => Some(Format::Gpx),
        b"TrainingCenterDatabase" => Some(Format::Tcx),
        _ => None,
    }
}

/// The local name of the first element, past a BOM, the XML declaration, comments and any
/// DOCTYPE (which parsing refuses: the file is still recognised, then fails as invalid).
fn root_element(bytes: &[u8]) -> Option<&[u8]> {
    let mut rest = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    loop {
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        rest = &rest[start..];
        if let Some(declared) = rest.strip_prefix(b"<!DOCTYPE") {
            // Its internal subset may hold `>`; the name it declares is the root's.
            let declared = declared.trim_ascii_start();
            let end = declared.iter().position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'['))?;
            return Some(local_name(&declared[..end]));
        }
        if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            let close = if rest.starts_with(b"<!--") { b"-->".as_slice() } else { b">".as_slice() };
            let end = rest.windows(close.len()).position(|w| w == close)?;
            rest = &rest[end + close.len()..];
            continue;
        }
        let name = rest.strip_prefix(b"<")?;
        let end = name.iter().position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'))?;
        return Some(local_name(&name[..end]));
    }
}

fn local_name(qualified: &[u8]) -> &[u8] {
    qualified.iter().rposition(|&b| b == b':').map_or(qualified, |colon| &qualified[colon + 1..])
}

/// The file's bytes as the format defines them: gunzipped when gzipped, at most
/// [`MAX_INFLATED_BYTES`], counted while inflating (a gzip header's size is never trusted).
pub fn inflate(bytes: &[u8]) -> Result<Cow<'_, [u8]>, TrackError> {
    if !is_gzip(bytes) {
        if bytes.len() as u64 > MAX_INFLATED_BYTES {
            return Err(too_large());
        }
        return Ok(Cow::Borrowed(bytes));
    }
    let mut plain = Vec::with_capacity(bytes.len().saturating_mul(4).min(MAX_INFLATED_BYTES as usize));
    GzDecoder::new(bytes)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| TrackError::invalid(format!("the gzip stream is damaged: {e}")))?;
    if plain.len() as u64 > MAX_INFLATED_BYTES {
        return Err(too_large());
    }
    Ok(Cow::Owned(plain))
}

fn too_large() -> TrackError {
    TrackError::TooLarge("the file is over 100 MiB once gunzipped".into())
}

/// Reads a track from a file's bytes as they are stored (gunzipping them first when gzipped).
pub fn read(bytes: &[u8]) -> Result<Track, TrackError> {
    let plain = inflate(bytes)?;
    parse(&plain)
}

/// Reads `plain` as `format`, whatever its bytes say (for fuzzing each reader on its own).
pub fn parse_as(format: Format, plain: &[u8]) -> Result<Track, TrackError> {
    match format {
        Format::Gpx => gpx::parse(plain),
        Format::Tcx => tcx::parse(plain),
        Format::Fit => fit::parse(plain),
    }
}

/// Reads a track from a file's plain (not gzipped) bytes.
pub fn parse(plain: &[u8]) -> Result<Track, TrackError> {
    let mut track = match detect_plain(plain).ok_or(TrackError::UnknownFormat)? {
        Format::Gpx => gpx::parse(plain)?,
        Format::Tcx => tcx::parse(plain)?,
        Format::Fit => fit::parse(plain)?,
    };
    track.format = detect_plain(plain);
    Ok(track)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, write::GzEncoder};

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn formats_are_recognised_from_bytes_gzipped_or_not() {
        let gpx = b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- hi -->\n<gpx version=\"1.1\">";
        let tcx = b"<?xml version=\"1.0\"?><ns:TrainingCenterDatabase xmlns:ns=\"x\">";
        let mut fit = vec![14u8, 0x20, 0, 0, 0, 0, 0, 0];
        fit.extend_from_slice(b".FIT\0\0");
        assert_eq!(detect(gpx), Some(Format::Gpx));
        assert_eq!(detect(tcx), Some(Format::Tcx));
        assert_eq!(detect(&fit), Some(Format::Fit));
        assert_eq!(detect(&gzip(gpx)), Some(Format::Gpx));
        assert_eq!(detect(&gzip(&fit)), Some(Format::Fit));
        assert_eq!(detect(b"<html><body>"), None);
        assert_eq!(detect(b"\x89PNG\r\n"), None);
        assert_eq!(detect(b""), None);
    }

    #[test]
    fn inflating_stops_past_the_cap() {
        let bomb = gzip(&vec![b' '; (MAX_INFLATED_BYTES + 1) as usize]);
        assert!(matches!(inflate(&bomb), Err(TrackError::TooLarge(_))));
        let fine = gzip(b"<gpx/>");
        assert_eq!(&*inflate(&fine).unwrap(), b"<gpx/>");
        let truncated = &fine[..fine.len() / 2];
        assert!(matches!(inflate(truncated), Err(TrackError::Invalid(_))));
    }
}
