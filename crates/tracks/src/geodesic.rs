use std::sync::OnceLock;

use geographiclib_rs::{Geodesic, InverseGeodesic};

fn wgs84() -> &'static Geodesic {
    static WGS84: OnceLock<Geodesic> = OnceLock::new();
    WGS84.get_or_init(Geodesic::wgs84)
}

/// The WGS-84 geodesic distance in metres between two (latitude, longitude) positions in
/// degrees, by Karney's method (as GeographicLib computes it); elevation is ignored.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    if a == b {
        return 0.0;
    }
    wgs84().inverse(a.0, a.1, b.0, b.1)
}
