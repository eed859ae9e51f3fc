//! The external services tests need, started here when they can be.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::is_ci;

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
    let mut start = Command::new("pg_ctlcluster");
    start.args(["--skip-systemctl-redirect", &version, "main", "start"]);
    crate::run_within(&mut start, PG_COMMAND_LIMIT).is_ok()
}

/// A PostgreSQL cluster of the caller's own (`initdb` into a temporary directory, its own
/// port), for tests that stop and start the database: the shared server is never touched.
/// Stopped and removed when dropped.
pub struct PrivateCluster {
    bin: std::path::PathBuf,
    data: crate::load::TempDir,
    pub port: u16,
}

impl PrivateCluster {
    pub fn create() -> Result<Self, String> {
        let bin = newest_postgres_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let data = crate::load::TempDir::new("pgcluster")?;
        let port = crate::load::free_port()?;
        let cluster = Self { bin, data, port };
        if running_as_root() {
            // initdb refuses to run as root; the cluster belongs to the postgres account.
            crate::run_within(
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(&cluster.data.0),
                PG_COMMAND_LIMIT,
            )?;
        }
        let pgdata = cluster.data.0.join("pgdata");
        let mut initdb = cluster.as_owner(&cluster.bin.join("initdb"));
        initdb.args(["--auth=trust", "--username=postgres", "--no-sync", "--no-instructions", "-D"]).arg(&pgdata);
        let output = crate::output(&mut initdb, PG_COMMAND_LIMIT).map_err(|e| format!("initdb: {e}"))?;
        if !output.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        cluster.start()?;
        Ok(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.data.0.display());
        let log = self.data.0.join("postgres.log");
        let mut start = self.pg_ctl();
        start.args(["-w", "-t", "30", "-o", &options, "-l"]).arg(log).arg("start");
        quiet(&mut start).map_err(|e| format!("start the private PostgreSQL cluster: {e}"))
    }

    /// Stops the cluster the way a crash would: no checkpoint, clients cut off at once.
    pub fn stop_immediately(&self) -> Result<(), String> {
        let mut stop = self.pg_ctl();
        stop.args(["-w", "-m", "immediate", "stop"]);
        quiet(&mut stop).map_err(|e| format!("stop the private PostgreSQL cluster: {e}"))
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.as_owner(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.data.0.join("pgdata"));
        command
    }

    fn as_owner(&self, program: &std::path::Path) -> Command {
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

/// initdb, pg_ctl and pg_ctlcluster take seconds; a minute means they hang.
const PG_COMMAND_LIMIT: Duration = Duration::from_secs(90);

fn quiet(command: &mut Command) -> Result<(), String> {
    let output = crate::output(command, PG_COMMAND_LIMIT)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
    }
}

fn newest_postgres_bin() -> Option<std::path::PathBuf> {
    let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin): &(u32, std::path::PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    crate::output(Command::new("id").arg("-u"), Duration::from_secs(10))
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
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
