//! The layering check: our crates may depend on each other only downwards, as ARCHITECTURE.md
//! draws it. Reads `cargo metadata`, so it sees normal, dev and build dependencies alike.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Which of our crates each of our crates may depend on. `stride-server` may use any.
const ALLOWED: &[(&str, &[&str])] = &[
    ("stride-workers", &[]),
    ("stride-domain", &[]),
    ("stride-cache", &["stride-workers"]),
    ("stride-repository", &["stride-domain", "stride-workers", "stride-cache"]),
    ("stride-services", &["stride-domain", "stride-workers", "stride-cache", "stride-repository"]),
    ("stride-http", &["stride-services", "stride-domain"]),
];
const ANY: &str = "stride-server";

pub fn check(root: &Path) -> Result<(), String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let graph = graph_of(&metadata);
    let violations = violations(&graph);
    for (krate, deps) in &graph {
        println!("{krate} -> {}", if deps.is_empty() { "(none of ours)".to_owned() } else { deps.join(", ") });
    }
    if violations.is_empty() {
        println!("layers ok: {} crates, every dependency points down", graph.len());
        Ok(())
    } else {
        Err(format!(
            "layering violated:\n  {}\nsee ARCHITECTURE.md \"Layers\"; move the code down or depend on a lower crate's trait",
            violations.join("\n  ")
        ))
    }
}

/// Our crates (named `stride-*`) and the `stride-*` crates each depends on.
fn graph_of(metadata: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    let mut graph = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let Some(name) = package["name"].as_str().filter(|n| n.starts_with("stride-")) else {
            continue;
        };
        let mut deps: Vec<String> = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str())
            .filter(|d| d.starts_with("stride-") && *d != name)
            .map(str::to_owned)
            .collect();
        deps.sort();
        deps.dedup();
        graph.insert(name.to_owned(), deps);
    }
    graph
}

fn violations(graph: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (krate, deps) in graph {
        if krate == ANY {
            continue;
        }
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| name == krate) else {
            found
                .push(format!("{krate} is not in the layer table (add it to xtask/src/layers.rs and ARCHITECTURE.md)"));
            continue;
        };
        for dep in deps {
            if !allowed.contains(&dep.as_str()) {
                found.push(format!("{krate} must not depend on {dep}"));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges.iter().map(|(k, d)| (k.to_string(), d.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn the_intended_layering_passes() {
        let ok = graph(&[
            ("stride-domain", &[]),
            ("stride-workers", &[]),
            ("stride-repository", &["stride-domain", "stride-workers"]),
            ("stride-services", &["stride-repository", "stride-domain"]),
            ("stride-http", &["stride-services", "stride-domain"]),
            ("stride-server", &["stride-http", "stride-repository", "stride-services"]),
        ]);
        assert_eq!(violations(&ok), Vec::<String>::new());
    }

    #[test]
    fn an_upward_or_skipping_dependency_fails() {
        let bad = graph(&[
            ("stride-domain", &["stride-repository"]),
            ("stride-http", &["stride-repository"]),
            ("stride-workers", &["stride-domain"]),
        ]);
        assert_eq!(
            violations(&bad),
            vec![
                "stride-domain must not depend on stride-repository",
                "stride-http must not depend on stride-repository",
                "stride-workers must not depend on stride-domain",
            ]
        );
    }

    #[test]
    fn an_unknown_crate_fails_until_it_is_placed_in_a_layer() {
        let unknown = graph(&[("stride-photos", &[])]);
        assert_eq!(violations(&unknown).len(), 1);
    }
}
