//! Any bytes through the tcx reader and every metric: an error or a track, never a panic, and
//! what it reads measures and exports without one either.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stride_tracks::testing::fuzz_one(stride_tracks::Format::Tcx, data));
