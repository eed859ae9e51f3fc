//! The external services tests need, started here when they can be.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{is_ci, run};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct Postgres {
    pub url: String,
}

impl Postgres {
    /// Makes sure the test PostgreSQL answers. Starts the machine's cluster only when the URL is
    /// the default one and it is down; an unreachable server is a failure, naming the URL.
    pub fn ensure() -> Result<Self, String> {
        let url = std::env::var("STRIDE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
        let address =
            host_port(&url).ok_or_else(|| format!("cannot read host:port from STRIDE_TEST_DATABASE_URL={url}"))?;
        if reachable(&address) {
            return Ok(Self { url });
        }
        if url == DEFAULT_TEST_DATABASE_URL && start_local_cluster() && wait_until(&address, Duration::from_secs(30)) {
            return Ok(Self { url });
        }
        let hint = if is_ci() { " (CI=true: a missing database is a failure, never a skip)" } else { "" };
        Err(format!(
            "PostgreSQL at {url} is unreachable{hint}. Start it (`pg_ctlcluster --skip-systemctl-redirect \
             $(ls /etc/postgresql) main start`) or set STRIDE_TEST_DATABASE_URL."
        ))
    }
}

fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    Some(if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") })
}

fn reachable(address: &str) -> bool {
    address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

fn wait_until(address: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if reachable(address) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn start_local_cluster() -> bool {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return false;
    };
    let Some(version) = versions.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).max()
    else {
        return false;
    };
    println!("PostgreSQL is down; starting the local cluster {version}/main");
    run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "start"])).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_read_from_database_urls() {
        assert_eq!(host_port(DEFAULT_TEST_DATABASE_URL).as_deref(), Some("127.0.0.1:5432"));
        assert_eq!(host_port("postgres://u:p@db.local/x?sslmode=off").as_deref(), Some("db.local:5432"));
    }
}
