//! Photo processing against libvips, the anchor (`vipsthumbnail`, Debian's `libvips-tools`).
//!
//! The bench makes its own deterministic test set: 12 MP JPEGs (4000×3000, quality 90), some
//! carrying EXIF orientation 6, 8 or 3. For each, Stride's `process` and `vipsthumbnail` make the
//! same two outputs (display ≤ 2048 px, thumbnail ≤ 320 px from the display, JPEG q82, orientation
//! applied, metadata stripped), in alternating rounds, and the CPU time each spent is compared:
//! ours on this thread (`/proc/thread-self/stat`), libvips's as its processes' (`cutime` and
//! `cstime` of `/proc/self/stat`, counted when they are waited for).
//!
//! It also checks the quality is libvips's: the PSNR of each display output against a
//! high-quality reference (the `image` crate's float Lanczos3 of the oriented original) must be
//! within 0.5 dB of libvips's; and it measures the peak resident memory one image in flight
//! adds (`VmHWM` after resetting it through `/proc/self/clear_refs`).
//!
//! Results go where `cargo xtask bench photos` reads its gates. `STRIDE_BENCH_FULL=1` (the
//! xtask's `--full`) uses 8 images and 5 rounds instead of 3 and 3.

mod common;

/// The allocator `stride` runs with. With glibc's malloc the CPU per image moved by a third
/// from run to run: whether a freed 36 MB pixel buffer went back to the kernel (and the next
/// one was faulted in again, page by page) depended on glibc's moving mmap threshold.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::{DynamicImage, GenericImageView};
use stride_services::photos::PhotoLimits;
use stride_services::photos::process::process;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
/// Orientation of the n-th test image (`None`: no EXIF block).
const ORIENTATIONS: [Option<u16>; 8] = [None, Some(6), Some(8), Some(3), None, Some(6), None, Some(8)];

fn main() {
    let full = std::env::var("STRIDE_BENCH_FULL").is_ok_and(|v| v == "1");
    let (images, rounds) = if full { (8, 7) } else { (3, 5) };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let inputs: Vec<PathBuf> = (0..images).map(|n| write_test_image(dir.path(), n)).collect();
    let vips = which_vipsthumbnail();

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Which side goes first alternates, so a trend over the run weighs on both alike.
        if round % 2 == 0 {
            ours.push(our_cpu_ms(&inputs));
            theirs.push(vips_cpu_ms(&vips, &inputs, dir.path()));
        } else {
            theirs.push(vips_cpu_ms(&vips, &inputs, dir.path()));
            ours.push(our_cpu_ms(&inputs));
        }
    }
    println!("photos: CPU ms per round, stride {ours:.0?}, libvips {theirs:.0?}");
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    // The ratio is taken within each round (both sides measured back to back) and the median
    // of those ratios gates: a slow spell of the machine weighs on both sides of one ratio.
    let ratio = median(ours.iter().zip(&theirs).map(|(ours, theirs)| ours / theirs).collect());
    let ours = median(ours) / images as f64;
    let theirs = ours / ratio;
    println!("photos: CPU per image (display + thumbnail): stride {ours:.0} ms, libvips {theirs:.0} ms ({ratio:.2}×)");
    common::record("photos/cpu_per_image/stride", ours * 1e6);
    common::record("photos/cpu_per_image/libvips", theirs * 1e6);

    let (our_db, vips_db) = psnr_against_reference(&vips, &inputs[1], dir.path());
    println!("photos: display PSNR against a float Lanczos3 reference: stride {our_db:.2} dB, libvips {vips_db:.2} dB");
    assert!(
        our_db >= vips_db - 0.5,
        "stride's display is more than 0.5 dB below libvips's ({our_db:.2} vs {vips_db:.2})"
    );

    let (wall, cpu_per_core) = ten_photos_through_the_upload_path(&inputs);
    println!(
        "photos: ten photos through the upload path: wall {wall:.0} ms, CPU/cores {cpu_per_core:.0} ms ({:.2}×)",
        wall / cpu_per_core
    );
    common::record("photos/upload_ten/wall", wall * 1e6);
    common::record("photos/upload_ten/cpu_per_core", cpu_per_core * 1e6);

    let peak = peak_bytes_for_one_image(&inputs[0]);
    println!("photos: peak resident memory one image in flight adds: {:.0} MB", peak / 1e6);
    common::record("photos/peak_bytes_per_image", peak);
    common::record("photos/peak_bytes_budget", 100e6);
}

/// A deterministic 12 MP photo-like JPEG (smooth gradients, edges and fine texture, so neither
/// the encoder nor the resizer meets a trivial input), with an EXIF orientation if asked.
fn write_test_image(dir: &Path, n: usize) -> PathBuf {
    let seed = n as u32 * 7919;
    let image = image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed) >> 29;
        let stripe = if (x / 40 + y / 60 + n as u32).is_multiple_of(7) { 60 } else { 0 };
        image::Rgb([
            ((x * 255 / WIDTH) as u8).wrapping_add(stripe).wrapping_add(noise as u8),
            ((y * 255 / HEIGHT) as u8).wrapping_add(noise as u8),
            (((x + y + seed) / 23 % 256) as u8).wrapping_sub(stripe),
        ])
    });
    let mut jpeg = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&DynamicImage::ImageRgb8(image))
        .expect("encode the test image");
    let mut bytes = jpeg.into_inner();
    if let Some(orientation) = ORIENTATIONS[n % ORIENTATIONS.len()] {
        let mut with_exif = bytes[..2].to_vec();
        with_exif.extend(exif_orientation(orientation));
        with_exif.extend(&bytes[2..]);
        bytes = with_exif;
    }
    let path = dir.join(format!("input-{n}.jpg"));
    std::fs::write(&path, bytes).expect("write the test image");
    path
}

/// An APP1 EXIF segment holding only an orientation tag.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    tiff.extend(1u16.to_be_bytes());
    tiff.extend([0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend(((tiff.len() + 8) as u16).to_be_bytes());
    segment.extend(b"Exif\x00\x00");
    segment.extend(tiff);
    segment
}

fn which_vipsthumbnail() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("vipsthumbnail"))
        .find(|path| path.exists());
    found.expect("vipsthumbnail is required (Debian: apt-get install libvips-tools; .ci/run installs it)")
}

fn ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("CLK_TCK is a number")
}

/// Fields of a `/proc/…/stat` line after the command name, 1-based as in proc(5) minus 2.
fn stat_field(path: &str, field: usize) -> f64 {
    let stat = std::fs::read_to_string(path).expect("read /proc stat");
    let after_name = stat.rsplit_once(')').expect("a stat line").1;
    after_name.split_whitespace().nth(field - 3).and_then(|v| v.parse().ok()).expect("a stat field")
}

/// CPU milliseconds this thread spends processing every input once.
fn our_cpu_ms(inputs: &[PathBuf]) -> f64 {
    let bytes: Vec<Vec<u8>> = inputs.iter().map(|path| std::fs::read(path).expect("read input")).collect();
    let cpu = || stat_field("/proc/thread-self/stat", 14) + stat_field("/proc/thread-self/stat", 15);
    let before = cpu();
    for input in &bytes {
        std::hint::black_box(process(input, PhotoLimits::default()).expect("the test image processes"));
    }
    (cpu() - before) * 1000.0 / ticks_per_second()
}

/// CPU milliseconds `vipsthumbnail` spends making the same outputs for every input: display
/// from the original, thumbnail from the display (two processes, as our pipeline does it in
/// two steps too).
fn vips_cpu_ms(vips: &Path, inputs: &[PathBuf], dir: &Path) -> f64 {
    let children = || stat_field("/proc/self/stat", 16) + stat_field("/proc/self/stat", 17);
    let before = children();
    for (n, input) in inputs.iter().enumerate() {
        let display = dir.join(format!("vips-display-{n}.jpg"));
        let thumb = dir.join(format!("vips-thumb-{n}.jpg"));
        vipsthumbnail(vips, input, 2048, &display);
        vipsthumbnail(vips, &display, 320, &thumb);
    }
    (children() - before) * 1000.0 / ticks_per_second()
}

fn vipsthumbnail(vips: &Path, input: &Path, size: u32, output: &Path) {
    let status = Command::new(vips)
        .arg(input)
        .args(["--size", &format!("{size}x{size}"), "-o"])
        .arg(format!("{}[Q=82,strip]", output.display()))
        .status()
        .expect("run vipsthumbnail");
    assert!(status.success(), "vipsthumbnail failed on {}", input.display());
}

/// PSNR of stride's and libvips's display outputs against a float Lanczos3 reference.
fn psnr_against_reference(vips: &Path, input: &Path, dir: &Path) -> (f64, f64) {
    let bytes = std::fs::read(input).expect("read input");
    let ours = image::load_from_memory(&process(&bytes, PhotoLimits::default()).expect("process").display.bytes)
        .expect("decode ours");
    let vips_display = dir.join("psnr-vips.jpg");
    vipsthumbnail(vips, input, 2048, &vips_display);
    let theirs = image::open(&vips_display).expect("decode libvips's");
    assert_eq!(ours.dimensions(), theirs.dimensions(), "both displays have the same size");

    let mut decoder =
        image::ImageReader::new(Cursor::new(&bytes)).with_guessed_format().unwrap().into_decoder().unwrap();
    let orientation = image::ImageDecoder::orientation(&mut decoder).unwrap();
    let mut original = DynamicImage::from_decoder(decoder).expect("decode the original");
    original.apply_orientation(orientation);
    let (width, height) = ours.dimensions();
    let reference = DynamicImage::ImageRgb32F(original.to_rgb32f()).resize_exact(
        width,
        height,
        image::imageops::FilterType::Lanczos3,
    );
    (psnr(&ours, &reference), psnr(&theirs, &reference))
}

fn psnr(image: &DynamicImage, reference: &DynamicImage) -> f64 {
    let (a, b) = (image.to_rgb32f(), reference.to_rgb32f());
    let squared: f64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from((x - y.clamp(0.0, 1.0)).powi(2))).sum();
    let mse = squared / a.as_raw().len() as f64;
    10.0 * (1.0 / mse).log10()
}

/// Extra peak resident memory of processing one image, in bytes.
fn peak_bytes_for_one_image(input: &Path) -> f64 {
    let bytes = std::fs::read(input).expect("read input");
    let kib = |key: &str| -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("a status field")
    };
    // Writing 5 resets the peak resident set to the current one (proc(5), clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let before = kib("VmRSS:");
    std::hint::black_box(process(&bytes, PhotoLimits::default()).expect("process"));
    (kib("VmHWM:") - before) * 1024.0
}

/// Ten photos uploaded through `PhotoService::upload` (SQLite, the disk store), called in this
/// process so no HTTP client competes for the cores: (wall ms, process CPU ms / cores). Equal
/// means every core was busy all along; the gate allows 1.5×.
fn ten_photos_through_the_upload_path(inputs: &[PathBuf]) -> (f64, f64) {
    use std::sync::Arc;

    use stride_repository::testing::{TestDatabase, deadline};
    use stride_services::{LocalBlobStore, Registration, Stride, SystemClock, UploadFile};

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let db = TestDatabase::sqlite();
        let blobs = tempfile::tempdir().expect("a blob folder");
        let disk = Arc::new(LocalBlobStore::open(blobs.path()).await.expect("open the blob folder"));
        let stride =
            Stride::new(db.sqlite_store().await, Arc::new(SystemClock), disk, Default::default()).expect("services");
        let registration = Registration {
            username: stride_domain::Username::parse("bench").unwrap(),
            password: stride_domain::Password::parse("correct horse battery").unwrap(),
            display_name: None,
            timezone: None,
        };
        let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user.id;
        let draft = stride_domain::ActivityDraft {
            sport: stride_domain::Sport::Run,
            title: stride_domain::Title::default(),
            started_at: stride_domain::StartedAt::new(
                chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap(),
            ),
            duration: stride_domain::MovingTime::from_seconds(600).unwrap(),
            distance: stride_domain::Distance::from_metres(1000.0).unwrap(),
            visibility: stride_domain::Visibility::Private,
            start_latlng: None,
            description: None,
        };
        let activity = stride.activities.create(deadline(), user, draft, None).await.unwrap().activity().id;
        let files: Vec<UploadFile> = (0..10)
            .map(|n| {
                UploadFile::new(format!("p{n}.jpg"), std::fs::read(&inputs[n % inputs.len()]).expect("read input"))
            })
            .collect();
        let cpu = || stat_field("/proc/self/stat", 14) + stat_field("/proc/self/stat", 15);
        let cores = std::thread::available_parallelism().map_or(2, usize::from) as f64;
        let (before, started) = (cpu(), std::time::Instant::now());
        let uploaded =
            stride.photos.upload(deadline(), user, activity, files, None).await.expect("the upload succeeds");
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        let cpu_ms = (cpu() - before) * 1000.0 / ticks_per_second();
        assert_eq!(uploaded.photos().len(), 10);
        (wall, cpu_ms / cores)
    })
}
