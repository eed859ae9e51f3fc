//! `cargo xtask abuse-user`: what signed-in accounts can make a release process hold, measured
//! against the budgets it is configured with (the defaults: 256 MiB of upload bodies, 512 MiB of
//! decoded pixels, two uploads in flight per user).
//!
//! - 20 uploads (10 accounts × 2) each send 4 × 24 MiB of parts and then stall: the resident
//!   set stays within the upload budget + 100 MB, and each is answered 503 (the budget stayed
//!   full) or 408 (the stall was cut off), or cut off while still sending.
//! - 8 concurrent uploads of a 7000 × 7000 16-bit RGBA PNG (4 accounts × 2): the resident set
//!   stays within the decode budget + 150 MB, and each answer is 201, 503 or 429.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::abuse::rss_kib;
use crate::load::{Connection, Server, build_release, connect, register, request, start};

const MIB: u64 = 1024 * 1024;
const UPLOAD_BUDGET: u64 = 256 * MIB;
const DECODE_BUDGET: u64 = 512 * MIB;
const BOUNDARY: &str = "stride-abuse-boundary";

pub fn abuse_user() -> Result<(), String> {
    build_release()?;
    let server = start(&[
        ("STRIDE_REGISTRATIONS_PER_HOUR", "1000".to_owned()),
        ("STRIDE_UPLOAD_STALL_TIMEOUT_MS", "8000".to_owned()),
    ])?;
    let accounts: Vec<(String, String)> =
        (0..10).map(|n| account(&server, &format!("uploader{n}"))).collect::<Result<_, _>>()?;
    stalled_uploads(&server, &accounts)?;
    large_pngs(&server, &accounts[..4])?;
    Ok(())
}

/// A registered user and one of their activities.
fn account(server: &Server, username: &str) -> Result<(String, String), String> {
    let token = register(server.port, username)?;
    let body = r#"{"sport":"run","started_at":"2026-03-01T07:00:00Z","duration_s":1800,"distance_m":5000}"#;
    let (status, created) = request(server.port, "POST", "/api/v1/activities", Some(&token), Some(body))?;
    if status != 201 {
        return Err(format!("create answered {status}: {created}"));
    }
    let json: serde_json::Value = serde_json::from_str(&created).map_err(|e| e.to_string())?;
    let id = json["id"].as_str().ok_or("no activity id")?.to_owned();
    Ok((token, id))
}

fn upload_head(token: &str, activity: &str, length: u64) -> String {
    format!(
        "POST /api/v1/activities/{activity}/photos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    )
}

fn part_head(name: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\n\r\n")
}

/// One client thread's work.
type Client<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs `clients` at once while sampling the server's resident set every 10 ms; returns their
/// results and the peak in KiB.
fn sampled<T: Send>(pid: u32, clients: Vec<Client<'_, T>>) -> (Vec<T>, u64) {
    let peak = AtomicU64::new(rss_kib(pid).unwrap_or(0));
    let done = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Ok(now) = rss_kib(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let handles: Vec<_> = clients.into_iter().map(|client| scope.spawn(client)).collect();
        let results = handles.into_iter().map(|h| h.join().expect("a client thread panicked")).collect();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        results
    });
    (results, peak.into_inner())
}

/// Sends 4 × 24 MiB parts, never the closing boundary, and reads what the server answers: the
/// status, or `None` when the connection was cut while sending.
fn stalled_upload(port: u16, token: &str, activity: &str) -> Result<Option<u16>, String> {
    let stream = connect(port)?;
    stream.set_write_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut connection = Connection::new(stream.try_clone().map_err(|e| e.to_string())?)?;
    let part = 24 * MIB as usize;
    let length = 4 * (part_head("x.jpg").len() + part + 2) as u64 + 64;
    let mut writer = stream;
    let chunk = vec![0u8; MIB as usize];
    let sent = (|| -> std::io::Result<()> {
        writer.write_all(upload_head(token, activity, length).as_bytes())?;
        for _ in 0..4 {
            writer.write_all(part_head("x.jpg").as_bytes())?;
            writer.write_all(&[0xFF, 0xD8, 0xFF])?;
            writer.write_all(&chunk[3..])?;
            for _ in 1..24 {
                writer.write_all(&chunk)?;
            }
            writer.write_all(b"\r\n")?;
        }
        Ok(())
    })();
    match connection.answer() {
        Ok((status, _)) => Ok(Some(status)),
        Err(_) if sent.is_err() => Ok(None),
        Err(error) => Err(format!("a stalled upload got no answer: {error}")),
    }
}

fn stalled_uploads(server: &Server, accounts: &[(String, String)]) -> Result<(), String> {
    let idle = rss_kib(server.child.id())?;
    let started = Instant::now();
    let clients: Vec<Client<'_, Result<Option<u16>, String>>> = accounts
        .iter()
        .flat_map(|(token, activity)| [(token.clone(), activity.clone()), (token.clone(), activity.clone())])
        .map(|(token, activity)| {
            let port = server.port;
            Box::new(move || stalled_upload(port, &token, &activity)) as Client<'_, _>
        })
        .collect();
    let (answers, peak) = sampled(server.child.id(), clients);
    let answers: Vec<Option<u16>> = answers.into_iter().collect::<Result<_, _>>()?;
    let count = |wanted: Option<u16>| answers.iter().filter(|a| **a == wanted).count();
    let bound = UPLOAD_BUDGET + 100 * 1000 * 1000;
    println!(
        "20 stalled 4 × 24 MiB uploads in {:.1} s: {} × 503, {} × 408, {} cut off while sending; \
         RSS idle {} MiB, peak {} MiB (bound: upload budget {} MiB + 100 MB = {} MiB)",
        started.elapsed().as_secs_f64(),
        count(Some(503)),
        count(Some(408)),
        count(None),
        idle / 1024,
        peak / 1024,
        UPLOAD_BUDGET / MIB,
        bound / MIB
    );
    if let Some(other) = answers.iter().find(|a| !matches!(a, None | Some(503 | 408))) {
        return Err(format!("a stalled upload was answered {other:?}, not 503 or 408"));
    }
    if peak * 1024 > bound {
        return Err(format!("RSS reached {} MiB, past {} MiB", peak / 1024, bound / MIB));
    }
    Ok(())
}

/// A 7000 × 7000 16-bit RGBA PNG of one colour: 392 MB of samples in a file of a few MB.
fn large_png() -> Result<Vec<u8>, String> {
    let (side, bytes_per_row) = (7000u32, 7000 * 8);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    let mut stream = writer.stream_writer().map_err(|e| e.to_string())?;
    let row: Vec<u8> = (0..bytes_per_row).map(|i| if i % 8 < 6 { 0x40 } else { 0xFF }).collect();
    for _ in 0..side {
        stream.write_all(&row).map_err(|e| e.to_string())?;
    }
    stream.finish().map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn png_upload(port: u16, token: &str, activity: &str, image: &[u8]) -> Result<u16, String> {
    let stream = connect(port)?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
    let mut connection = Connection::new(stream)?;
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = (part_head("large.png").len() + image.len() + tail.len()) as u64;
    let mut request = upload_head(token, activity, length).into_bytes();
    request.extend_from_slice(part_head("large.png").as_bytes());
    request.extend_from_slice(image);
    request.extend_from_slice(tail.as_bytes());
    connection.exchange(&request).map(|(status, _)| status)
}

fn large_pngs(server: &Server, accounts: &[(String, String)]) -> Result<(), String> {
    let image = large_png()?;
    let idle = rss_kib(server.child.id())?;
    let started = Instant::now();
    let image = &image;
    let clients: Vec<Client<'_, Result<u16, String>>> = accounts
        .iter()
        .flat_map(|account| [account, account])
        .map(|(token, activity)| {
            let port = server.port;
            Box::new(move || png_upload(port, token, activity, image)) as Client<'_, _>
        })
        .collect();
    let (answers, peak) = sampled(server.child.id(), clients);
    let answers: Vec<u16> = answers.into_iter().collect::<Result<_, _>>()?;
    let count = |wanted: u16| answers.iter().filter(|a| **a == wanted).count();
    let bound = DECODE_BUDGET + 150 * 1000 * 1000;
    println!(
        "8 concurrent 7000 × 7000 16-bit PNGs ({} KB each) in {:.1} s: {} × 201, {} × 503, {} × 429; \
         RSS idle {} MiB, peak {} MiB (bound: decode budget {} MiB + 150 MB = {} MiB)",
        image.len() / 1000,
        started.elapsed().as_secs_f64(),
        count(201),
        count(503),
        count(429),
        idle / 1024,
        peak / 1024,
        DECODE_BUDGET / MIB,
        bound / MIB
    );
    if let Some(other) = answers.iter().find(|a| !matches!(a, 201 | 503 | 429)) {
        return Err(format!("a large PNG was answered {other}, not 201, 503 or 429"));
    }
    if count(201) == 0 {
        return Err("no large PNG was accepted: the budget admits none".into());
    }
    if peak * 1024 > bound {
        return Err(format!("RSS reached {} MiB, past {} MiB", peak / 1024, bound / MIB));
    }
    Ok(())
}
