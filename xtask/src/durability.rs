//! `cargo xtask durability`: nothing acknowledged is ever lost, and a database outage is a
//! clean 503, not a hang.
//!
//! Against separate release processes, under concurrent write load:
//! - SQLite, then PostgreSQL: `kill -9` the server, start it again over the same data: every
//!   activity that was answered 201 is there, and the stats equal a recount of the activities.
//! - PostgreSQL on a private cluster (its own `initdb` and port, never the shared server):
//!   stop the database the way a crash would, mid-load, for two seconds. Every request answers
//!   201 or 503 within its deadline, and writes succeed again within 5 s of the database
//!   accepting connections, without restarting `stride`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::load::{Connection, Server, TempDir, build_release, register, start_in};
use crate::services::PrivateCluster;

const WRITERS: usize = 4;
/// Acknowledged writes before the crash: enough that the kill lands mid-stream.
const WRITES_BEFORE_CRASH: usize = 200;
/// The servers run with this request deadline, so "never hangs" has a number.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(7);
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

pub fn durability() -> Result<(), String> {
    build_release()?;
    let sqlite = TempDir::new("durability-sqlite")?;
    let survived = kill_and_restart(&sqlite, &[])?;
    println!("SQLite: kill -9 under load; {survived}");

    let cluster = PrivateCluster::create()?;
    let data = TempDir::new("durability-postgres")?;
    let env = [("STRIDE_DATABASE_URL", cluster.url())];
    let outage = database_outage(&cluster, &data, &env)?;
    println!("PostgreSQL (private cluster on port {}): {outage}", cluster.port);
    let survived = kill_and_restart(&data, &env)?;
    println!("PostgreSQL: kill -9 under load; {survived}");
    Ok(())
}

fn server_env(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut all = env.to_vec();
    all.push(("STRIDE_REQUEST_TIMEOUT_MS", REQUEST_TIMEOUT.as_millis().to_string()));
    all
}

fn kill_and_restart(data: &TempDir, env: &[(&'static str, String)]) -> Result<String, String> {
    let env = server_env(env);
    let mut server = start_in(&data.0, &env)?;
    let token = register(server.port, &format!("crash_{}", std::process::id() % 100_000))?;
    let load = Load::default();
    std::thread::scope(|scope| -> Result<(), String> {
        // Declared before the writers: however this closure ends, an early `?` included, the
        // writers are told to stop before the scope waits for them.
        let _stop = StopOnDrop(&load.stop);
        for _ in 0..WRITERS {
            scope.spawn(|| load.write(server.port, &token));
        }
        load.wait_for_acknowledged(WRITES_BEFORE_CRASH)?;
        // SIGKILL: no shutdown, no flush, whatever was in flight is cut.
        server.child.kill().map_err(|e| format!("kill -9 stride: {e}"))?;
        let _ = server.child.wait();
        Ok(())
    })?;
    drop(server);
    let restarted = start_in(&data.0, &env)?;
    let acknowledged = load.acknowledged.into_inner().unwrap_or_else(|e| e.into_inner());
    let stored = verify(&restarted, &token, &acknowledged)?;
    Ok(format!(
        "{} acknowledged before the kill, all there after the restart ({stored} stored); stats = recount",
        acknowledged.len()
    ))
}

fn database_outage(cluster: &PrivateCluster, data: &TempDir, env: &[(&'static str, String)]) -> Result<String, String> {
    let server = start_in(&data.0, &server_env(env))?;
    let token = register(server.port, "outage_writer")?;
    let load = Load::default();
    let (stopped_at, back_at) = std::thread::scope(|scope| -> Result<(Instant, Instant), String> {
        let _stop = StopOnDrop(&load.stop);
        for _ in 0..WRITERS {
            scope.spawn(|| load.write(server.port, &token));
        }
        load.wait_for_acknowledged(WRITES_BEFORE_CRASH)?;
        cluster.stop_immediately()?;
        let stopped_at = Instant::now();
        // The outage itself: the database is down for this long, whatever the writers see.
        std::thread::sleep(OUTAGE);
        cluster.start()?;
        let back_at = Instant::now();
        let acknowledged = load.acknowledged_count();
        load.wait_for_acknowledged(acknowledged + WRITERS)?;
        Ok((stopped_at, back_at))
    })?;
    let outcomes = load.outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    let late = outcomes.iter().find(|o| o.took > REQUEST_TIMEOUT + Duration::from_secs(1));
    if let Some(late) = late {
        return Err(format!("a request took {:?}, past its {REQUEST_TIMEOUT:?} deadline", late.took));
    }
    let wrong: Vec<_> = outcomes.iter().filter(|o| !matches!(o.status, Ok(201 | 503))).take(5).collect();
    if !wrong.is_empty() {
        return Err(format!("answers other than 201 or 503 around the outage: {wrong:?}"));
    }
    let refused = outcomes.iter().filter(|o| o.status == Ok(503)).count();
    if refused == 0 {
        return Err("no request met the outage (no 503): the test did not test it".into());
    }
    let recovered = outcomes
        .iter()
        .filter(|o| o.status == Ok(201) && o.sent >= back_at)
        .map(|o| o.sent + o.took)
        .min()
        .ok_or("no write succeeded after the database came back")?;
    let recovery = recovered.duration_since(back_at);
    if recovery > RECOVERY_BOUND {
        return Err(format!(
            "writes succeeded again {recovery:?} after the database was back (bound {RECOVERY_BOUND:?})"
        ));
    }
    let slowest = outcomes.iter().filter(|o| o.status == Ok(503)).map(|o| o.took).max().unwrap_or_default();
    let acknowledged = load.acknowledged.into_inner().unwrap_or_else(|e| e.into_inner());
    verify(&server, &token, &acknowledged)?;
    Ok(format!(
        "database down {:.1} s mid-load: {refused} × 503 (slowest {} ms, deadline {} ms), writes again {} ms after \
         it accepted connections; {} acknowledged, all there; stats = recount",
        back_at.duration_since(stopped_at).as_secs_f64(),
        slowest.as_millis(),
        REQUEST_TIMEOUT.as_millis(),
        recovery.as_millis(),
        acknowledged.len()
    ))
}

/// Tells the writers to stop when dropped, on every path out of the scope that runs them.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Outcome {
    sent: Instant,
    took: Duration,
    status: Result<u16, String>,
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    next: AtomicUsize,
    acknowledged: Mutex<Vec<String>>,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Load {
    /// One writer: creates activities on a keep-alive connection until told to stop,
    /// reconnecting after a failure.
    fn write(&self, port: u16, token: &str) {
        let mut connection: Option<Connection> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let status = match connection.as_mut() {
                Some(open) => open.send("POST", "/api/v1/activities", Some(token), Some(&activity(n))),
                None => open(port).and_then(|mut fresh| {
                    let answer = fresh.send("POST", "/api/v1/activities", Some(token), Some(&activity(n)));
                    connection = Some(fresh);
                    answer
                }),
            };
            let took = sent.elapsed();
            match &status {
                Ok((201, body)) => {
                    let id = serde_json::from_str::<serde_json::Value>(body)
                        .ok()
                        .and_then(|json| json["id"].as_str().map(str::to_owned));
                    if let Some(id) = id {
                        self.acknowledged.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    connection = None;
                    // The server is down or restarting: pace the reconnects.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let status = status.map(|(code, _)| code);
            self.outcomes.lock().unwrap_or_else(|e| e.into_inner()).push(Outcome { sent, took, status });
        }
    }

    fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn wait_for_acknowledged(&self, wanted: usize) -> Result<(), String> {
        let give_up = Instant::now() + Duration::from_secs(60);
        while self.acknowledged_count() < wanted {
            if Instant::now() > give_up {
                return Err(format!("only {} of {wanted} writes acknowledged within 60 s", self.acknowledged_count()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

fn open(port: u16) -> Result<Connection, String> {
    let stream = crate::load::connect(port)?;
    // A server that hangs shows as a timeout here, recorded as a late answer.
    stream.set_read_timeout(Some(REQUEST_TIMEOUT * 3)).map_err(|e| e.to_string())?;
    Connection::new(stream)
}

/// The n-th activity, dated back from today (the server refuses a start more than a day
/// ahead): its day cycles through the last 336 days, skipping every 28th, so the streaks have
/// runs to count and gaps to break them.
fn activity(n: usize) -> String {
    let today = unix_day(std::time::SystemTime::now());
    let back = (n % 336) as i64;
    let back = back + back / 27;
    let (year, month, day) = civil_from_days(today - 1 - back);
    let (duration, distance) = (600 + n % 3600, 1000.0 + (n % 997) as f64 * 7.5);
    format!(
        r#"{{"sport":"run","started_at":"{year:04}-{month:02}-{day:02}T07:{:02}:00Z","duration_s":{duration},"distance_m":{distance}}}"#,
        n % 60
    )
}

fn unix_day(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

/// The date of a day number counted from 1970-01-01 (Howard Hinnant's civil_from_days), the
/// inverse of [`day_number`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Every acknowledged id is stored, and `/me/stats` equals a recount of what is stored.
/// Returns how many activities are stored.
fn verify(server: &Server, token: &str, acknowledged: &[String]) -> Result<usize, String> {
    let mut connection = open(server.port)?;
    let mut stored = std::collections::HashSet::new();
    let (mut distance, mut duration, mut days) = (0.0, 0_u64, std::collections::BTreeSet::new());
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/activities?limit=100&cursor={cursor}"),
            None => "/api/v1/activities?limit=100".to_owned(),
        };
        let (status, body) = connection.send("GET", &path, Some(token), None)?;
        if status != 200 {
            return Err(format!("listing activities answered {status}: {body}"));
        }
        let page: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        for item in page["items"].as_array().ok_or("no items in the list")? {
            stored.insert(item["id"].as_str().unwrap_or_default().to_owned());
            distance += item["distance_m"].as_f64().unwrap_or_default();
            duration += item["duration_s"].as_u64().unwrap_or_default();
            days.insert(day_number(item["local_date"].as_str().unwrap_or_default())?);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let lost: Vec<_> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    if !lost.is_empty() {
        return Err(format!("{} acknowledged activities are gone, e.g. {:?}", lost.len(), &lost[..lost.len().min(3)]));
    }
    let (status, body) = connection.send("GET", "/api/v1/me/stats", Some(token), None)?;
    if status != 200 {
        return Err(format!("stats answered {status}: {body}"));
    }
    let stats: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let recount = (stored.len() as u64, duration, longest_run(&days));
    let reported = (
        stats["total_activities"].as_u64().unwrap_or(u64::MAX),
        stats["total_duration_s"].as_u64().unwrap_or(u64::MAX),
        stats["longest_streak_days"].as_u64().unwrap_or(u64::MAX),
    );
    let reported_distance = stats["total_distance_m"].as_f64().unwrap_or(f64::NAN);
    if reported != recount || (reported_distance - distance).abs() > 0.01 * stored.len() as f64 {
        return Err(format!(
            "stats (activities, duration, longest streak) = {reported:?} and distance {reported_distance}, \
             but a recount gives {recount:?} and {distance}"
        ));
    }
    Ok(stored.len())
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's days_from_civil).
fn day_number(date: &str) -> Result<i64, String> {
    let mut parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad local_date {date:?}"));
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Ok(era * 146_097 + day_of_era - 719_468)
}

fn longest_run(days: &std::collections::BTreeSet<i64>) -> u64 {
    let (mut longest, mut run, mut previous) = (0, 0, None);
    for &day in days {
        run = if previous == Some(day - 1) { run + 1 } else { 1 };
        longest = longest.max(run);
        previous = Some(day);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_from_the_unix_epoch_across_leap_days() {
        assert_eq!(day_number("1970-01-01"), Ok(0));
        assert_eq!(day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(), 2);
        assert_eq!(day_number("2026-01-01").unwrap() - day_number("2025-12-31").unwrap(), 1);
    }

    #[test]
    fn civil_dates_and_day_numbers_are_inverses() {
        for days in [-1, 0, 59, 60, 10_957, 20_793, 20_794, 20_819] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(day_number(&format!("{y:04}-{m:02}-{d:02}")), Ok(days), "{days}");
        }
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
    }

    #[test]
    fn every_activity_starts_before_today_and_the_days_leave_gaps() {
        let today = unix_day(std::time::SystemTime::now());
        let mut days = std::collections::BTreeSet::new();
        for n in 0..400 {
            let body: serde_json::Value = serde_json::from_str(&activity(n)).unwrap();
            let date = &body["started_at"].as_str().unwrap()[..10];
            let day = day_number(date).unwrap();
            assert!(day < today && day >= today - 400, "{date}");
            days.insert(day);
        }
        let longest = longest_run(&days);
        assert!((2..336).contains(&longest), "runs of {longest} days");
    }

    #[test]
    fn the_longest_run_counts_consecutive_days_only() {
        let days = [1, 2, 3, 5, 6, 10].into_iter().collect();
        assert_eq!(longest_run(&days), 3);
        assert_eq!(longest_run(&Default::default()), 0);
    }
}
