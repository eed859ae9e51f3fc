//! How many tests each crate has, unit (beside the code) and integration (under `tests/`).
//! Every Stride crate must have unit tests of its own: a crate tested only from outside, or
//! only through the layers above it, is how untested corners hide.

use std::collections::BTreeMap;
use std::process::Command;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) unit: usize,
    pub(crate) integration: usize,
}

/// Reads `cargo nextest list --message-format oneline`: `crate test` for unit tests,
/// `crate::binary test` for integration tests and `crate::bin/name test` for binaries' own.
pub(crate) fn parse(listing: &str) -> BTreeMap<String, Counts> {
    let mut census: BTreeMap<String, Counts> = BTreeMap::new();
    for binary in listing.lines().filter_map(|line| line.split_whitespace().next()) {
        let (krate, kind) = binary.split_once("::").map_or((binary, None), |(c, k)| (c, Some(k)));
        let counts = census.entry(krate.to_owned()).or_default();
        match kind {
            None => counts.unit += 1,
            Some(kind) if kind.starts_with("bin/") => counts.unit += 1,
            Some(_) => counts.integration += 1,
        }
    }
    census
}

/// Prints the census and fails if a Stride crate has no unit test.
pub(crate) fn check() -> Result<(), String> {
    // The test binaries are built by then; listing them is quick unless something hangs.
    let output = crate::output(
        Command::new("cargo")
            .args(["nextest", "list", "--workspace", "--message-format", "oneline"])
            .current_dir(crate::project_root()),
        std::time::Duration::from_secs(600),
    )?;
    if !output.status.success() {
        return Err(format!("cargo nextest list failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let census = parse(&String::from_utf8_lossy(&output.stdout));
    println!("{:<20} {:>6} {:>12}", "crate", "unit", "integration");
    for (krate, counts) in &census {
        println!("{krate:<20} {:>6} {:>12}", counts.unit, counts.integration);
    }
    let untested: Vec<&str> =
        census.iter().filter(|(k, c)| k.starts_with("stride-") && c.unit == 0).map(|(k, _)| k.as_str()).collect();
    if untested.is_empty() {
        Ok(())
    } else {
        Err(format!("no unit tests beside the code in: {} (add #[cfg(test)] modules)", untested.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_integration_and_binary_tests_are_told_apart() {
        let listing = "stride-domain ids::tests::a\nstride-domain stats::tests::b\n\
                       stride-server::api sqlite::x\nxtask::bin/xtask census::tests::c\n";
        let census = parse(listing);
        assert_eq!(census["stride-domain"], Counts { unit: 2, integration: 0 });
        assert_eq!(census["stride-server"], Counts { unit: 0, integration: 1 });
        assert_eq!(census["xtask"], Counts { unit: 1, integration: 0 });
    }
}
