//! A track's points as stored in the blob store and read back for streams, export and the
//! map. The encoding is columnar — per column a presence bitmap, then the present values
//! (times as zigzag varint deltas, the rest as they are) — and deflated: a 4,200-point run
//! takes about 100 KB. Only timed points keep their time (see [`crate::metrics`]).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use crate::metrics::{cumulative_distance, timed_indices};
use crate::{MAX_POINTS, Point, TrackError, Zone, outside_zones};

const MAGIC: &[u8; 5] = b"STRK1";

/// The stream keys of the API, in the order it lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Time,
    Latlng,
    Altitude,
    Distance,
    Heartrate,
    Cadence,
    Power,
}

impl StreamKey {
    pub const ALL: [StreamKey; 7] = [
        StreamKey::Time,
        StreamKey::Latlng,
        StreamKey::Altitude,
        StreamKey::Distance,
        StreamKey::Heartrate,
        StreamKey::Cadence,
        StreamKey::Power,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            StreamKey::Time => "time",
            StreamKey::Latlng => "latlng",
            StreamKey::Altitude => "altitude",
            StreamKey::Distance => "distance",
            StreamKey::Heartrate => "heartrate",
            StreamKey::Cadence => "cadence",
            StreamKey::Power => "power",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.as_str() == raw)
    }
}

/// `high` is every point; `medium` and `low` take every k-th (k = ⌈n/1000⌉, ⌈n/100⌉) and the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Low,
    Medium,
    High,
}

impl Resolution {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "low" => Some(Resolution::Low),
            "medium" => Some(Resolution::Medium),
            "high" => Some(Resolution::High),
            _ => None,
        }
    }

    /// The indices of `n` points this resolution shows.
    pub fn indices(&self, n: usize) -> Vec<usize> {
        let step = match self {
            Resolution::High => 1,
            Resolution::Medium => n.div_ceil(1000).max(1),
            Resolution::Low => n.div_ceil(100).max(1),
        };
        let mut indices: Vec<usize> = (0..n).step_by(step).collect();
        if n > 0 && indices.last() != Some(&(n - 1)) {
            indices.push(n - 1);
        }
        indices
    }
}

impl Point {
    /// Whether the point has a value for `key` (every point has a cumulative distance).
    pub fn has(&self, key: StreamKey) -> bool {
        match key {
            StreamKey::Time => self.time_ns.is_some(),
            StreamKey::Latlng => self.position.is_some(),
            StreamKey::Altitude => self.elevation.is_some(),
            StreamKey::Distance => true,
            StreamKey::Heartrate => self.heart_rate.is_some(),
            StreamKey::Cadence => self.cadence.is_some(),
            StreamKey::Power => self.power.is_some(),
        }
    }
}

/// A track's points with their cumulative distance, as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Streams {
    pub points: Vec<Point>,
    /// The distance along the whole track to each point (kept when points are hidden).
    pub distance: Vec<f64>,
}

impl Streams {
    /// From a file's points: untimed points (and those whose time goes backwards) lose their time.
    pub fn from_points(mut points: Vec<Point>) -> Self {
        let distance = cumulative_distance(&points);
        let timed = timed_indices(&points);
        let mut next = timed.iter().peekable();
        for (i, point) in points.iter_mut().enumerate() {
            if next.peek() == Some(&&i) {
                next.next();
            } else {
                point.time_ns = None;
            }
        }
        Self { points, distance }
    }

    /// The first timed point's time, from which the `time` stream counts.
    pub fn first_time_ns(&self) -> Option<i64> {
        self.points.iter().find_map(|p| p.time_ns)
    }

    /// What others may see: the points inside none of the owner's zones (all of them when
    /// there are no zones).
    pub fn visible(self, zones: &[Zone]) -> Self {
        if zones.is_empty() {
            return self;
        }
        let (points, distance) = self
            .points
            .into_iter()
            .zip(self.distance)
            .filter(|(point, _)| outside_zones(point.position, zones))
            .unzip();
        Self { points, distance }
    }

    pub fn positions(&self) -> Vec<(f64, f64)> {
        self.points.iter().filter_map(|p| p.position).collect()
    }
}

/// Encodes a file's points (see [`Streams::from_points`]) for the blob store.
pub fn encode_points(streams: &Streams) -> Vec<u8> {
    let p = &streams.points;
    let mut raw = Vec::with_capacity(p.len() * 24 + 16);
    raw.extend_from_slice(MAGIC);
    raw.extend_from_slice(&(p.len() as u32).to_le_bytes());
    let mut last_time = 0i64;
    column(
        &mut raw,
        p,
        |p| p.time_ns,
        |out, t| {
            varint(out, zigzag(t.wrapping_sub(last_time)));
            last_time = t;
        },
    );
    column(
        &mut raw,
        p,
        |p| p.position,
        |out, (lat, lon)| {
            out.extend_from_slice(&lat.to_le_bytes());
            out.extend_from_slice(&lon.to_le_bytes());
        },
    );
    column(&mut raw, p, |p| p.elevation, |out, e| out.extend_from_slice(&e.to_le_bytes()));
    column(&mut raw, p, |p| p.device_distance, |out, d| out.extend_from_slice(&d.to_le_bytes()));
    column(&mut raw, p, |p| p.heart_rate, |out, v| out.push(v));
    column(&mut raw, p, |p| p.cadence, |out, v| out.push(v));
    column(&mut raw, p, |p| p.power, |out, v| out.extend_from_slice(&v.to_le_bytes()));
    let mut last_segment = 0u32;
    for point in p {
        varint(&mut raw, u64::from(point.segment - last_segment.min(point.segment)));
        last_segment = point.segment;
    }
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(&raw);
    encoder.finish().unwrap_or_default()
}

/// Decodes what [`encode_points`] wrote; the cumulative distance is computed again.
pub fn decode_points(bytes: &[u8]) -> Result<Streams, TrackError> {
    let mut raw = Vec::new();
    DeflateDecoder::new(bytes)
        .take(MAX_POINTS as u64 * 64 + 64)
        .read_to_end(&mut raw)
        .map_err(|e| corrupt(&e.to_string()))?;
    let mut input = Reader { raw: &raw, at: 0 };
    if input.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let n = u32::from_le_bytes(input.array()?) as usize;
    if n > MAX_POINTS {
        return Err(corrupt("too many points"));
    }
    let mut points = vec![Point::default(); n];
    let mut time = 0i64;
    read_column(&mut input, &mut points, |input, p| {
        time = time.wrapping_add(unzigzag(input.varint()?));
        p.time_ns = Some(time);
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.position = Some((f64::from_le_bytes(input.array()?), f64::from_le_bytes(input.array()?)));
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.elevation = Some(f64::from_le_bytes(input.array()?));
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.device_distance = Some(f64::from_le_bytes(input.array()?));
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.heart_rate = Some(input.take(1)?[0]);
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.cadence = Some(input.take(1)?[0]);
        Ok(())
    })?;
    read_column(&mut input, &mut points, |input, p| {
        p.power = Some(u16::from_le_bytes(input.array()?));
        Ok(())
    })?;
    let mut segment = 0u32;
    for point in &mut points {
        segment = segment.saturating_add(u32::try_from(input.varint()?).map_err(|_| corrupt("segment"))?);
        point.segment = segment;
    }
    let distance = cumulative_distance(&points);
    Ok(Streams { points, distance })
}

fn column<T: Copy>(
    out: &mut Vec<u8>,
    points: &[Point],
    get: impl Fn(&Point) -> Option<T>,
    mut put: impl FnMut(&mut Vec<u8>, T),
) {
    let mut bitmap = vec![0u8; points.len().div_ceil(8)];
    for (i, point) in points.iter().enumerate() {
        if get(point).is_some() {
            bitmap[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bitmap);
    for value in points.iter().filter_map(get) {
        put(out, value);
    }
}

fn read_column(
    input: &mut Reader<'_>,
    points: &mut [Point],
    mut read: impl FnMut(&mut Reader<'_>, &mut Point) -> Result<(), TrackError>,
) -> Result<(), TrackError> {
    let bitmap = input.take(points.len().div_ceil(8))?.to_vec();
    for (i, point) in points.iter_mut().enumerate() {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            read(input, point)?;
        }
    }
    Ok(())
}

struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TrackError> {
        let slice = self.raw.get(self.at..self.at + n).ok_or_else(|| corrupt("truncated"))?;
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TrackError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, TrackError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint"))
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn corrupt(why: &str) -> TrackError {
    TrackError::invalid(format!("stored track is corrupt: {why}"))
}
