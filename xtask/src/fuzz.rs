//! `cargo xtask fuzz [--examples N]`: schemathesis against the release binary, on SQLite and on
//! PostgreSQL, with a registered user's token. It generates requests from the served OpenAPI
//! document and fails on any server error, undocumented status, response that breaks its
//! schema, schema-valid request refused or schema-violating request accepted — so the
//! document must state every rule the server enforces. Logout is left out of the token's run
//! (it would revoke the token every other operation uses); `.config/schemathesis.toml` names
//! the two narrow exclusions and why.

use std::path::PathBuf;
use std::process::Command;

use crate::services::Postgres;
use crate::{project_root, run};

/// Pinned: a newer schemathesis may add checks, which should arrive by a deliberate change.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

pub fn fuzz(examples: u32) -> Result<(), String> {
    let st = schemathesis()?;
    crate::load::build_release()?;
    let postgres = Postgres::ensure()?;
    let database = format!("stride_fuzz_{}", std::process::id());
    psql(&postgres.url, &format!("DROP DATABASE IF EXISTS {database}"))?;
    psql(&postgres.url, &format!("CREATE DATABASE {database}"))?;
    let pg_url = replace_database(&postgres.url, &database);
    let outcome = [("sqlite", None), ("postgres", Some(pg_url))].into_iter().try_for_each(|(backend, url)| {
        println!("fuzzing the API on {backend}");
        let env: Vec<(&str, String)> = url.map(|u| vec![("STRIDE_DATABASE_URL", u)]).unwrap_or_default();
        let server = crate::load::start(&env)?;
        let token = crate::load::register(server.port, "fuzzer")?;
        let base = format!("http://127.0.0.1:{}", server.port);
        run(Command::new(&st).current_dir(project_root()).args([
            "--config-file",
            ".config/schemathesis.toml",
            "run",
            &format!("{base}/api/v1/openapi.json"),
            "--url",
            &base,
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--exclude-path",
            "/api/v1/auth/logout",
            "--max-examples",
            &examples.to_string(),
            "--no-color",
        ]))
        .map_err(|e| format!("schemathesis found problems on {backend}: {e}"))
    });
    psql(&postgres.url, &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))?;
    outcome
}

/// `pip show`; an install may take ten times this.
const PIP_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `st` of a private virtualenv under the target dir, made on first use.
fn schemathesis() -> Result<PathBuf, String> {
    let venv = crate::target_dir()?.join("schemathesis-venv");
    let st = venv.join("bin/st");
    let installed = crate::output(Command::new(venv.join("bin/pip")).args(["show", "schemathesis"]), PIP_LIMIT)
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("4.32.5"));
    if !installed || !st.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        crate::run_within(Command::new(venv.join("bin/pip")).args(["install", "-q", SCHEMATHESIS]), PIP_LIMIT * 10)?;
    }
    Ok(st)
}

fn psql(admin_url: &str, sql: &str) -> Result<(), String> {
    crate::run_within(
        Command::new("psql").args([admin_url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]),
        std::time::Duration::from_secs(120),
    )
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    query.map_or_else(|| format!("{server}/{name}"), |q| format!("{server}/{name}?{q}"))
}
