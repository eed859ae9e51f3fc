//! `cargo xtask soak --secs N`: mixed traffic at a fixed rate against a release process for N
//! seconds (ci: 60). Every answer must be the expected one; the resident set at the end must be
//! within 10 % of what it was after a 10 s warm-up; and once the traffic stops, the runtime's
//! alive tasks must come back to the count they had when the warm-up's traffic stopped (a
//! leaked task per request shows here long before it shows in memory).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::abuse::rss_kib;
use crate::load::{Connection, build_release, register, request, start};

const CLIENTS: usize = 8;
/// Requests per second, all clients together.
const RATE: u64 = 120;
const WARM_UP: Duration = Duration::from_secs(10);
const RSS_GROWTH_BOUND: f64 = 0.10;
const HISTORY: usize = 20;

pub fn soak(secs: u64) -> Result<(), String> {
    let total = Duration::from_secs(secs.max(WARM_UP.as_secs() + 5));
    build_release()?;
    // Every client logs in from 127.0.0.1 about once a second; the per-address login bucket
    // (10 a minute) is for strangers, not for this traffic.
    let server = start(&[("STRIDE_LOGINS_PER_MINUTE", "100000".to_owned())])?;
    let pid = server.child.id();
    let tokens: Vec<String> = (0..CLIENTS).map(|n| register(server.port, &username(n))).collect::<Result<_, _>>()?;

    let warm = Traffic::default();
    // The warm-up runs at twice the rate, so caches, pools and allocator arenas reach the
    // size the soak's traffic keeps them at.
    warm.run(server.port, &tokens, WARM_UP, 2 * RATE)?;
    let tasks_at_rest = settled_alive_tasks(server.metrics_port, None)?;
    let rss_warm = settled_rss_kib(pid)?;
    let rss_warm_at = Instant::now();

    let soak = Traffic::default();
    let mut trajectory = Vec::new();
    std::thread::scope(|scope| -> Result<(), String> {
        let traffic = scope.spawn(|| soak.run(server.port, &tokens, total - WARM_UP, RATE));
        // The resident set every 10 s, printed with the verdict: a leak climbs steadily, a
        // cache filling up flattens.
        while !traffic.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if trajectory.len() < (rss_warm_at.elapsed().as_secs() / 10) as usize {
                trajectory.push(rss_kib(pid)? / 1024);
                // Scraped like Prometheus would: the exporter folds buffered samples into
                // its histograms only when it renders them.
                alive_tasks(server.metrics_port)?;
            }
        }
        traffic.join().map_err(|_| "the traffic panicked".to_owned())?
    })?;
    let rss_end = settled_rss_kib(pid)?;
    let tasks_after = settled_alive_tasks(server.metrics_port, Some(tasks_at_rest))?;

    let requests = warm.done.load(Ordering::Relaxed) + soak.done.load(Ordering::Relaxed);
    let growth = rss_end as f64 / rss_warm as f64 - 1.0;
    println!(
        "soak: {requests} requests in {} s at {RATE}/s by {CLIENTS} clients, 0 errors; RSS after warm-up {} KiB, \
         at the end {} KiB ({:+.1} %, bound +{:.0} %); tokio alive tasks at rest {tasks_at_rest}, after {tasks_after}; RSS every 10 s (MiB): {trajectory:?}",
        total.as_secs(),
        rss_warm,
        rss_end,
        growth * 100.0,
        RSS_GROWTH_BOUND * 100.0
    );
    if growth > RSS_GROWTH_BOUND {
        return Err(format!(
            "RSS grew {:.1} % during the soak (bound {:.0} %)",
            growth * 100.0,
            RSS_GROWTH_BOUND * 100.0
        ));
    }
    Ok(())
}

#[derive(Default)]
struct Traffic {
    done: AtomicU64,
    failed: AtomicBool,
    errors: Mutex<Vec<String>>,
}

impl Traffic {
    /// `CLIENTS` keep-alive clients, each on its own schedule of `rate / CLIENTS` requests per
    /// second, for `length`; they close their connections when done.
    fn run(&self, port: u16, tokens: &[String], length: Duration, rate: u64) -> Result<(), String> {
        let started = Instant::now();
        let interval = Duration::from_secs_f64(CLIENTS as f64 / rate as f64);
        std::thread::scope(|scope| {
            for (client, token) in tokens.iter().enumerate() {
                scope.spawn(move || {
                    if let Err(error) = self.client(port, client, token, started, interval, length) {
                        self.failed.store(true, Ordering::Relaxed);
                        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(error);
                    }
                });
            }
        });
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        match errors.first() {
            None => Ok(()),
            Some(first) => Err(format!("{} clients failed; first: {first}", errors.len())),
        }
    }

    fn client(
        &self,
        port: u16,
        client: usize,
        token: &str,
        started: Instant,
        interval: Duration,
        length: Duration,
    ) -> Result<(), String> {
        let stream = crate::load::connect(port)?;
        stream.set_read_timeout(Some(Duration::from_secs(15))).map_err(|e| e.to_string())?;
        let mut connection = Connection::new(stream)?;
        let mut created: Vec<String> = Vec::new();
        // Clients start staggered across one interval, so the load is even, not in bursts.
        let mut next = started + interval.mul_f64(client as f64 / CLIENTS as f64);
        let mut step = 0_usize;
        while next < started + length && !self.failed.load(Ordering::Relaxed) {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            next += interval;
            step += 1;
            let (method, path, body, expected) = match step % 10 {
                // Every client keeps about `HISTORY` activities: past it, each second write
                // deletes the oldest, so the data stops growing after the warm-up and growth
                // means a leak, not more data.
                5 if created.len() > HISTORY => ("DELETE", format!("/api/v1/activities/{}", created[0]), None, 204),
                0 | 5 => ("POST", "/api/v1/activities".to_owned(), Some(activity(client, step)), 201),
                1 | 6 => ("GET", "/api/v1/me/stats".to_owned(), None, 200),
                2 => ("GET", "/api/v1/activities?limit=20".to_owned(), None, 200),
                3 => ("GET", "/api/v1/me".to_owned(), None, 200),
                4 => match created.last() {
                    Some(id) => {
                        ("PATCH", format!("/api/v1/activities/{id}"), Some(r#"{"title":"soaked"}"#.into()), 200)
                    }
                    None => ("GET", "/api/v1/me".to_owned(), None, 200),
                },
                7 => ("GET", "/api/v1/activities?limit=5".to_owned(), None, 200),
                8 => ("GET", "/healthz".to_owned(), None, 200),
                _ => ("POST", "/api/v1/auth/login".to_owned(), Some(login(client)), 200),
            };
            let (status, answer) = connection.send(method, &path, Some(token), body.as_deref())?;
            if status != expected {
                return Err(format!("{method} {path} answered {status} (expected {expected}): {answer}"));
            }
            if path == "/api/v1/auth/login" {
                // Sign the new session out again, so sessions do not pile up in the database.
                let json: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
                let session = json["token"].as_str().ok_or("no token in a login answer")?;
                let (status, answer) = connection.send("POST", "/api/v1/auth/logout", Some(session), None)?;
                if status != 204 {
                    return Err(format!("POST /api/v1/auth/logout answered {status} (expected 204): {answer}"));
                }
            }
            if expected == 201 {
                let json: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
                created.push(json["id"].as_str().ok_or("no id in a created activity")?.to_owned());
            } else if method == "DELETE" {
                created.remove(0);
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The client's own login: a password hash and a new session each time.
fn login(client: usize) -> String {
    format!(r#"{{"username":"{}","password":"correct horse battery"}}"#, username(client))
}

fn username(client: usize) -> String {
    format!("soak_{client}_{}", std::process::id() % 10_000)
}

fn activity(client: usize, step: usize) -> String {
    let day = step % 28 + 1;
    format!(
        r#"{{"sport":"ride","started_at":"2026-02-{day:02}T0{}:00:00Z","duration_s":{},"distance_m":{}}}"#,
        client % 10,
        900 + step % 900,
        5000 + step % 5000
    )
}

/// The resident set once the traffic has stopped and the allocator has returned what it
/// frees lazily (jemalloc purges freed pages over ~10 s): both ends of the comparison are
/// taken at rest, so a hash buffer freed a moment ago weighs on neither.
fn settled_rss_kib(pid: u32) -> Result<u64, String> {
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut last = rss_kib(pid)?;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = rss_kib(pid)?;
        if now.abs_diff(last) * 200 < last || Instant::now() > give_up {
            return Ok(now);
        }
        last = now;
    }
}

/// The runtime's alive tasks once the connections just closed have wound down: at most
/// `at_most` if given (waiting up to 5 s for it), else whatever it settles at.
fn settled_alive_tasks(port: u16, at_most: Option<u64>) -> Result<u64, String> {
    let give_up = Instant::now() + Duration::from_secs(5);
    let mut last = alive_tasks(port)?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = alive_tasks(port)?;
        let settled = match at_most {
            Some(bound) => now <= bound,
            None => now == last,
        };
        if settled {
            return Ok(now);
        }
        if Instant::now() > give_up {
            return Err(match at_most {
                Some(bound) => {
                    format!("tokio alive tasks stayed at {now} after the traffic stopped (at rest: {bound})")
                }
                None => format!("tokio alive tasks did not settle ({last} → {now})"),
            });
        }
        last = now;
    }
}

fn alive_tasks(port: u16) -> Result<u64, String> {
    let (status, text) = request(port, "GET", "/metrics", None, None)?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    text.lines()
        .find_map(|line| line.strip_prefix("tokio_alive_tasks "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
        .ok_or_else(|| "no tokio_alive_tasks in /metrics".to_owned())
}
