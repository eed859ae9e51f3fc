//! Where a track is: privacy zones (a point is inside when its geodesic distance to the
//! centre is at most the radius) and the time zone at a position.

use std::sync::OnceLock;

use chrono::{DateTime, Offset, TimeZone, Utc};
use tzf_rs::EmbeddedFinder;

use crate::distance_m;

/// A circle around a place the owner does not show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

impl Zone {
    pub fn contains(&self, position: (f64, f64)) -> bool {
        // A degree of latitude is at least 110,574 m (at the equator): a point further north
        // or south than the radius reaches is outside without a geodesic.
        if (position.0 - self.lat).abs() * 110_574.0 > self.radius_m + 1.0 {
            return false;
        }
        distance_m((self.lat, self.lon), position) <= self.radius_m
    }
}

/// Whether a point may be shown to others: it has no position, or it is outside every zone.
pub fn outside_zones(position: Option<(f64, f64)>, zones: &[Zone]) -> bool {
    position.is_none_or(|p| !zones.iter().any(|zone| zone.contains(p)))
}

fn finder() -> &'static EmbeddedFinder {
    // The low-memory finder reads the embedded data in place (about 4 MB, nothing expanded).
    static FINDER: OnceLock<EmbeddedFinder> = OnceLock::new();
    FINDER.get_or_init(EmbeddedFinder::new)
}

/// The IANA time zone at a position; at sea where the map names none, the nautical
/// `Etc/GMT±N` zone of its longitude (whose sign is inverted, as POSIX names it).
pub fn time_zone_name(position: (f64, f64)) -> String {
    let name = finder().get_tz_name(position.1, position.0);
    if !name.is_empty() {
        return name.to_owned();
    }
    let hours = (position.1 / 15.0).round() as i32;
    match hours {
        0 => "Etc/GMT".to_owned(),
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    }
}

/// The UTC offset in seconds of the time zone at `position` at the instant `at_ns`.
pub fn local_offset_at(position: (f64, f64), at_ns: i64) -> Option<i32> {
    let zone: chrono_tz::Tz = time_zone_name(position).parse().ok()?;
    let at = DateTime::<Utc>::from_timestamp_nanos(at_ns);
    Some(zone.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_come_from_the_position_and_the_instant() {
        // Tokyo: +09:00; Ljubljana in June: +02:00 (summer time), in January +01:00.
        let june = DateTime::parse_from_rfc3339("2026-06-02T00:00:00Z").unwrap().timestamp_nanos_opt().unwrap();
        let january = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z").unwrap().timestamp_nanos_opt().unwrap();
        assert_eq!(time_zone_name((35.68, 139.76)), "Asia/Tokyo");
        assert_eq!(local_offset_at((35.68, 139.76), june), Some(9 * 3600));
        assert_eq!(local_offset_at((46.05, 14.5), june), Some(2 * 3600));
        assert_eq!(local_offset_at((46.05, 14.5), january), Some(3600));
    }

    #[test]
    fn at_sea_the_nautical_zone_applies() {
        // The middle of the Pacific and of the Atlantic.
        let name = time_zone_name((-30.0, -140.0));
        assert_eq!(name, "Etc/GMT+9");
        assert_eq!(local_offset_at((-30.0, -140.0), 0), Some(-9 * 3600));
        assert_eq!(local_offset_at((0.0, -30.0), 0), Some(-2 * 3600));
    }

    #[test]
    fn a_zone_holds_points_up_to_its_radius() {
        let zone = Zone { lat: 46.0, lon: 14.0, radius_m: 200.0 };
        // GeographicLib: 0.00179° of latitude north of 46° is 198.96 m, 0.0018° is 200.07 m.
        assert!(zone.contains((46.00179, 14.0)));
        assert!(!zone.contains((46.0018, 14.0)));
        assert!(Zone { radius_m: 200.08, ..zone }.contains((46.0018, 14.0)));
        assert!(outside_zones(None, &[zone]));
        assert!(!outside_zones(Some((46.0, 14.0)), &[zone]));
        assert!(outside_zones(Some((46.0, 14.0)), &[]));
    }
}
