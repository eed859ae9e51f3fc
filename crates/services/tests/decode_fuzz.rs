//! No input panics the decode path: a mutation fuzzer on stable, over real JPEG, PNG and WebP
//! files (some with EXIF), and over arbitrary bytes behind each format's magic number.
//!
//! Each run mutates for `STRIDE_DECODE_FUZZ_SECS` seconds (default 10; ci's test stage runs
//! the default, well inside its 60 s budget) from a random seed that is printed, so a failure
//! can be replayed with `STRIDE_DECODE_FUZZ_SEED`. A panic inside `process` would abort the
//! request's worker thread: it is caught here and reported with the input that caused it.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stride_services::photos::PhotoLimits;
use stride_services::photos::process::{self, DISPLAY_LONG_SIDE, THUMB_LONG_SIDE};

fn encoded(format: image::ImageFormat, width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let image = if alpha {
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([x as u8, y as u8, 7, (x * y) as u8])
        }))
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([x as u8, y as u8, 99])
        }))
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG with an APP1 EXIF block carrying an orientation, so the EXIF parser is fuzzed too.
fn jpeg_with_exif(orientation: u16) -> Vec<u8> {
    let plain = encoded(image::ImageFormat::Jpeg, 40, 24, false);
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend(1u16.to_be_bytes());
    tiff.extend([0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(((tiff.len() + 8) as u16).to_be_bytes());
    segment.extend(b"Exif\x00\x00");
    segment.extend(tiff);
    let mut out = plain[..2].to_vec();
    out.extend(segment);
    out.extend(&plain[2..]);
    out
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        encoded(image::ImageFormat::Jpeg, 64, 48, false),
        encoded(image::ImageFormat::Png, 48, 64, true),
        encoded(image::ImageFormat::Png, 30, 20, false),
        encoded(image::ImageFormat::WebP, 40, 40, true),
        jpeg_with_exif(6),
        jpeg_with_exif(8),
    ]
}

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        if bytes.is_empty() {
            bytes.push(rng.random());
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..7) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => bytes.truncate(at),
            3 => {
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            4 => {
                let junk: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
                bytes.splice(at..at, junk);
            }
            // Interesting values where sizes and lengths live.
            5 => {
                let value = [0x00, 0xFF, 0x7F, 0x80][rng.random_range(0..4)];
                for b in bytes.iter_mut().skip(at).take(4) {
                    *b = value;
                }
            }
            _ => {
                let end = (at + rng.random_range(1..256)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

/// Random bytes behind a real magic number, so they reach the decoders.
fn arbitrary(rng: &mut StdRng) -> Vec<u8> {
    let magic: &[u8] = match rng.random_range(0..3) {
        0 => &[0xFF, 0xD8, 0xFF],
        1 => b"\x89PNG\r\n\x1a\n",
        _ => b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    };
    let mut bytes = magic.to_vec();
    bytes.extend((0..rng.random_range(0..600)).map(|_| rng.random::<u8>()));
    bytes
}

#[test]
fn no_input_panics_the_decode_path() {
    let seconds: u64 = std::env::var("STRIDE_DECODE_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 =
        std::env::var("STRIDE_DECODE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("decode fuzz: seed {seed}, {seconds} s (replay with STRIDE_DECODE_FUZZ_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds = seeds();
    let limits = PhotoLimits { max_pixels: 4_000_000, max_side: 4_000 };
    for seed in &seeds {
        process::process(seed, limits).expect("every seed is a valid image");
    }
    let stop = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut accepted) = (0_u64, 0_u64);
    while Instant::now() < stop {
        let input = if rng.random_bool(0.8) {
            let seed = &seeds[rng.random_range(0..seeds.len())];
            mutate(&mut rng, seed)
        } else {
            arbitrary(&mut rng)
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| process::process(&input, limits)));
        let Ok(result) = outcome else {
            let path = std::env::temp_dir().join(format!("stride-decode-crash-{seed}-{runs}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!("process panicked on the input saved at {}", path.display());
        };
        if let Ok(made) = result {
            accepted += 1;
            assert!(made.display.width.max(made.display.height) <= DISPLAY_LONG_SIDE);
            assert!(made.thumb.width.max(made.thumb.height) <= THUMB_LONG_SIDE);
            assert!(u64::from(made.width) * u64::from(made.height) <= limits.max_pixels);
        }
        runs += 1;
    }
    println!("decode fuzz: {runs} inputs, {accepted} decoded, none panicked");
    assert!(runs > 100, "the fuzzer ran too few inputs to mean anything: {runs}");
}
