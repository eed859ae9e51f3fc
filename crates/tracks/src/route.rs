//! The route drawn on the map: positions projected to metres around the bounding box's
//! centre (x = R·Δλ·cos φ₀, y = R·Δφ, R = 6,371,008.8 m), simplified with Ramer–Douglas–Peucker
//! (a point is kept when its distance to the segment between the current endpoints exceeds the
//! tolerance) starting at 5 m and doubling until at most 1,000 points remain, over all
//! segments joined in order, then encoded as Google's encoded polyline (precision 5).
//!
//! RDP is written by hand with an explicit stack: a recursive one can be driven arbitrarily
//! deep by a crafted file.

/// The mean Earth radius used by the projection, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// The first tolerance tried, in metres.
pub const FIRST_TOLERANCE_M: f64 = 5.0;
/// The most points a route keeps.
pub const MAX_ROUTE_POINTS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub polyline: String,
    pub tolerance_m: f64,
    /// `[min_lat, min_lon, max_lat, max_lon]`.
    pub bbox: [f64; 4],
    /// The kept positions, for drawing.
    pub kept: Vec<(f64, f64)>,
}

/// The route of `positions` (in order); `None` when there is none.
pub fn route(positions: &[(f64, f64)]) -> Option<Route> {
    let first = *positions.first()?;
    let mut bbox = [first.0, first.1, first.0, first.1];
    for &(lat, lon) in positions {
        bbox = [bbox[0].min(lat), bbox[1].min(lon), bbox[2].max(lat), bbox[3].max(lon)];
    }
    let (lat0, lon0) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let cos0 = lat0.to_radians().cos();
    let projected: Vec<(f64, f64)> = positions
        .iter()
        .map(|&(lat, lon)| {
            (EARTH_RADIUS_M * (lon - lon0).to_radians() * cos0, EARTH_RADIUS_M * (lat - lat0).to_radians())
        })
        .collect();
    // One recursion serves every tolerance tried (see `importance`).
    let importance = importance(&projected, FIRST_TOLERANCE_M);
    let mut tolerance = FIRST_TOLERANCE_M;
    while importance.iter().filter(|&&i| i > tolerance).count() > MAX_ROUTE_POINTS {
        tolerance *= 2.0;
    }
    let kept: Vec<(f64, f64)> =
        positions.iter().zip(&importance).filter(|(_, i)| **i > tolerance).map(|(p, _)| *p).collect();
    Some(Route { polyline: encode(&kept), tolerance_m: tolerance, bbox, kept })
}

/// Which points Ramer–Douglas–Peucker keeps at `tolerance` (at least [`FIRST_TOLERANCE_M`]).
pub fn simplify(points: &[(f64, f64)], tolerance: f64) -> Vec<bool> {
    importance(points, tolerance).iter().map(|&i| i > tolerance).collect()
}

/// For each point, the largest tolerance at which Ramer–Douglas–Peucker still keeps it: the
/// distance at which it split its interval, capped by that of every split above it (the
/// endpoints are always kept). The recursion splits an interval at its farthest point
/// whatever the tolerance, so it is one tree for all tolerances: RDP at `t` keeps exactly the
/// points whose importance exceeds `t`, and doubling the tolerance needs no second pass.
/// Intervals whose farthest point is within `floor` are not split further (no tolerance at or
/// above it keeps anything inside them).
fn importance(points: &[(f64, f64)], floor: f64) -> Vec<f64> {
    let mut importance = vec![0.0; points.len()];
    let Some(last) = points.len().checked_sub(1) else { return importance };
    importance[0] = f64::INFINITY;
    importance[last] = f64::INFINITY;
    // Squared distances throughout: the order is the same, and no square root per point.
    let floor2 = floor * floor;
    let mut pending = vec![(0usize, last, f64::INFINITY)];
    while let Some((start, end, cap2)) = pending.pop() {
        let mut farthest = (start, 0.0f64);
        for i in start + 1..end {
            let d2 = to_segment2(points[i], points[start], points[end]);
            if d2 > farthest.1 {
                farthest = (i, d2);
            }
        }
        if farthest.1 > floor2 {
            let effective2 = farthest.1.min(cap2);
            importance[farthest.0] = effective2.sqrt();
            pending.push((start, farthest.0, effective2));
            pending.push((farthest.0, end, effective2));
        }
    }
    importance
}

/// The squared distance from `p` to the segment `a`–`b`.
fn to_segment2(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 == 0.0 { 0.0 } else { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length2).clamp(0.0, 1.0) };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    (p.0 - cx).powi(2) + (p.1 - cy).powi(2)
}

/// Google's encoded polyline of (latitude, longitude) pairs at precision 5.
pub fn encode(positions: &[(f64, f64)]) -> String {
    let mut out = String::with_capacity(positions.len() * 8);
    let (mut last_lat, mut last_lon) = (0i64, 0i64);
    for &(lat, lon) in positions {
        let (lat, lon) = ((lat * 1e5).round() as i64, (lon * 1e5).round() as i64);
        push_value(&mut out, lat - last_lat);
        push_value(&mut out, lon - last_lon);
        (last_lat, last_lon) = (lat, lon);
    }
    out
}

fn push_value(out: &mut String, delta: i64) {
    let mut value = ((delta << 1) ^ (delta >> 63)) as u64;
    while value >= 0x20 {
        out.push(char::from((0x20 | (value & 0x1f)) as u8 + 63));
        value >>= 5;
    }
    out.push(char::from(value as u8 + 63));
}

/// The inverse of [`encode`], for tests and for drawing.
pub fn decode(polyline: &str) -> Option<Vec<(f64, f64)>> {
    let bytes = polyline.as_bytes();
    let (mut i, mut lat, mut lon, mut out) = (0usize, 0i64, 0i64, Vec::new());
    let next = |i: &mut usize| -> Option<i64> {
        let (mut shift, mut result) = (0u32, 0u64);
        loop {
            let b = u64::from(bytes.get(*i)?.checked_sub(63)?);
            *i += 1;
            result |= (b & 0x1f) << shift;
            shift += 5;
            if b < 0x20 || shift > 60 {
                break;
            }
        }
        Some(((result >> 1) as i64) ^ -((result & 1) as i64))
    };
    while i < bytes.len() {
        lat += next(&mut i)?;
        lon += next(&mut i)?;
        out.push((lat as f64 / 1e5, lon as f64 / 1e5));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_example_encodes_as_documented() {
        // Google's documented example.
        let points = [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)];
        assert_eq!(encode(&points), "_p~iF~ps|U_ulLnnqC_mqNvxq`@");
        assert_eq!(decode("_p~iF~ps|U_ulLnnqC_mqNvxq`@").unwrap(), points.to_vec());
    }

    #[test]
    fn rdp_keeps_only_points_farther_than_the_tolerance() {
        let line = [(0.0, 0.0), (10.0, 4.9), (20.0, 0.0), (30.0, 5.1), (40.0, 0.0)];
        // Against the chord (0,0)–(40,0): 5.1 m > 5 keeps index 3; then (0,0)–(30,5.1) leaves
        // (10, 4.9) at ~3.2 m and (20, 0) at ~3.4 m: both dropped.
        assert_eq!(simplify(&line, 5.0), vec![true, false, false, true, true]);
        assert_eq!(simplify(&line, 5.2), vec![true, false, false, false, true]);
    }

    #[test]
    fn tolerance_doubles_until_at_most_a_thousand_points_remain() {
        // A zigzag of 5,000 points with 12 m teeth: 5, 10 m keep them all, 20 m none.
        let positions: Vec<(f64, f64)> =
            (0..5000).map(|i| (46.0 + f64::from(i) * 0.0001, 14.0 + if i % 2 == 0 { 0.0 } else { 0.00016 })).collect();
        let route = route(&positions).unwrap();
        assert_eq!(route.tolerance_m, 20.0);
        assert!(route.kept.len() <= MAX_ROUTE_POINTS);
        assert_eq!(route.bbox, [46.0, 14.0, 46.0 + 4999.0 * 0.0001, 14.00016]);
    }
}
