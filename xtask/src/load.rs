//! A small HTTP/1.1 load generator (std only: no root, no extra install) for the stats gate:
//! cached `GET /api/v1/me/stats` must sustain at least 70% of the requests/s of `GET /api/v1/me`,
//! which pays the same authentication cost. Rounds alternate between the two endpoints and the
//! medians of five rounds are compared, so drift on a shared machine hits both alike.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{project_root, run};

const CONNECTIONS: usize = 4;
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// `/metrics` is served only on its own listener (`STRIDE_METRICS_LISTEN`).
    pub(crate) metrics_port: u16,
    _data: Option<TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("stride-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Returns (requests/s of `/me`, requests/s of cached `/me/stats`), medians of the rounds.
pub fn stats_vs_me() -> Result<(f64, f64), String> {
    build_release()?;
    let server = start(&[])?;
    let token = register(server.port, "load_generator")?;
    for day in 1..=20 {
        let body = format!(
            r#"{{"sport":"run","started_at":"2026-03-{day:02}T07:00:00Z","duration_s":1800,"distance_m":5000}}"#
        );
        let (status, _) = request(server.port, "POST", "/api/v1/activities", Some(&token), Some(&body))?;
        if status != 201 {
            return Err(format!("creating an activity answered {status}"));
        }
    }
    let (mut me, mut stats) = (Vec::new(), Vec::new());
    // Which side goes first alternates, so a trend over the run (a warming cache, a neighbour's
    // load) weighs on both alike.
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            me.push(load(server.port, "/api/v1/me", &token)?);
            stats.push(load(server.port, "/api/v1/me/stats", &token)?);
        } else {
            stats.push(load(server.port, "/api/v1/me/stats", &token)?);
            me.push(load(server.port, "/api/v1/me", &token)?);
        }
    }
    Ok((median(me), median(stats)))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The release `stride` the load and fuzzing gates run against, built now so that an old one
/// is never measured.
pub(crate) fn build_release() -> Result<(), String> {
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(project_root()).args([
        "build",
        "--release",
        "-q",
        "-p",
        "stride-server",
        "--bin",
        "stride",
    ]))
}

/// Starts the release binary on a free port with its own data directory and `env` on top,
/// and waits until it is healthy.
pub(crate) fn start(env: &[(&str, String)]) -> Result<Server, String> {
    let data = TempDir::new(&format!("load-{}", free_port()?))?;
    let mut server = start_in(&data.0, env)?;
    server._data = Some(data);
    Ok(server)
}

pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts the release binary on a free port over the data directory `data`, which outlives
/// the server (a restart finds what the last run left).
pub(crate) fn start_in(data: &std::path::Path, env: &[(&str, String)]) -> Result<Server, String> {
    let (port, metrics_port) = (free_port()?, free_port()?);
    let child = Command::new(crate::target_dir()?.join("release/stride"))
        .env("STRIDE_LISTEN", format!("127.0.0.1:{port}"))
        .env("STRIDE_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .env("STRIDE_DATA_DIR", data)
        .env("STRIDE_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("start target/release/stride: {e}"))?;
    let mut server = Server { child, port, metrics_port, _data: None };
    let give_up = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/healthz", None, None).map(|(status, _)| status) != Ok(200) {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("stride exited at start ({status})"));
        }
        if Instant::now() > give_up {
            return Err("stride did not become healthy".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

pub(crate) fn register(port: u16, username: &str) -> Result<String, String> {
    let body = format!(r#"{{"username":"{username}","password":"correct horse battery"}}"#);
    let (status, response) = request(port, "POST", "/api/v1/auth/register", None, Some(&body))?;
    if status != 201 {
        return Err(format!("register answered {status}: {response}"));
    }
    let json: serde_json::Value = serde_json::from_str(&response).map_err(|e| e.to_string())?;
    json["token"].as_str().map(str::to_owned).ok_or_else(|| "no token in the register answer".into())
}

/// One request on a fresh connection.
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut connection = Connection::new(connect(port)?)?;
    connection.send(method, path, token, body)
}

/// A connection to the server under test, given up after [`SOCKET_TIMEOUT`].
pub(crate) fn connect(port: u16) -> Result<TcpStream, String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, SOCKET_TIMEOUT).map_err(|e| e.to_string())
}

/// Requests/s that `CONNECTIONS` keep-alive connections sustain on `path` for one round.
fn load(port: u16, path: &str, token: &str) -> Result<f64, String> {
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (path, token) = (path.to_owned(), token.to_owned());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut connection = Connection::new(connect(port)?)?;
                let mut done = 0;
                while started.elapsed() < ROUND {
                    let (status, _) = connection.send("GET", &path, Some(&token), None)?;
                    if status != 200 {
                        return Err(format!("{path} answered {status} under load"));
                    }
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.join().map_err(|_| "a load thread panicked".to_owned())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

pub(crate) struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    /// A connection whose reads and writes each give up after 30 s, unless the caller set a
    /// timeout of its own: a server that hangs fails the gate instead of hanging it.
    pub(crate) fn new(stream: TcpStream) -> Result<Self, String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        if stream.read_timeout().map_err(|e| e.to_string())?.is_none() {
            stream.set_read_timeout(Some(SOCKET_TIMEOUT)).map_err(|e| e.to_string())?;
        }
        if stream.write_timeout().map_err(|e| e.to_string())?.is_none() {
            stream.set_write_timeout(Some(SOCKET_TIMEOUT)).map_err(|e| e.to_string())?;
        }
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Self { reader: BufReader::new(stream), writer })
    }

    pub(crate) fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        self.exchange(head.as_bytes())
    }

    /// Writes a whole request as given (head and body) and reads the answer.
    pub(crate) fn exchange(&mut self, request: &[u8]) -> Result<(u16, String), String> {
        self.writer.write_all(request).map_err(|e| e.to_string())?;
        self.answer()
    }

    /// Reads one answer: its status and body.
    pub(crate) fn answer(&mut self) -> Result<(u16, String), String> {
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(|_| format!("bad content-length {value:?}"))?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
