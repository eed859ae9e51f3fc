//! Any bytes as stored points (a corrupt blob): an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = stride_tracks::decode_points(data);
});
