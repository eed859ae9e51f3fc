//! The layering check: our crates may depend on each other only downwards, as ARCHITECTURE.md
//! draws it. Reads `cargo metadata`, so it sees normal, dev and build dependencies alike. Then
//! the invariants inside crates, read from the sources: modules that must not name each other,
//! and calls only one module may make.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Which of our crates each of our crates may depend on. `stride-server` may use any.
const ALLOWED: &[(&str, &[&str])] = &[
    ("stride-concurrency", &[]),
    ("stride-domain", &[]),
    ("stride-tracks", &[]),
    ("stride-imaging", &["stride-domain"]),
    ("stride-course", &["stride-concurrency"]),
    ("stride-cache", &["stride-concurrency"]),
    ("stride-repository", &["stride-domain", "stride-concurrency", "stride-cache"]),
    (
        "stride-services",
        &[
            "stride-domain",
            "stride-tracks",
            "stride-imaging",
            "stride-concurrency",
            "stride-cache",
            "stride-repository",
        ],
    ),
    ("stride-http", &["stride-services", "stride-domain"]),
];
const ANY: &str = "stride-server";

pub fn check(root: &Path) -> Result<(), String> {
    let output = crate::output(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(root).args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
        ]),
        std::time::Duration::from_secs(120),
    )?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let graph = graph_of(&metadata);
    let mut violations = violations(&graph);
    violations.extend(source_violations(root)?);
    for (krate, deps) in &graph {
        println!("{krate} -> {}", if deps.is_empty() { "(none of ours)".to_owned() } else { deps.join(", ") });
    }
    if violations.is_empty() {
        println!("layers ok: {} crates, every dependency points down", graph.len());
        Ok(())
    } else {
        Err(format!(
            "layering violated:\n  {}\nsee ARCHITECTURE.md \"Layers\"; move the code down, into a shared module, or \
             depend on a lower crate's trait",
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

/// Inside a crate: (files under this path, must not contain this text, why).
const FORBIDDEN_IN_SOURCES: &[(&str, &str, &str)] = &[
    ("crates/http/src/routes", "crate::pages", "the API must not import the web app (share it in edge/)"),
    ("crates/http/src/pages", "crate::routes", "the web app must not import the API (share it in edge/)"),
    ("crates/http/src/edge", "crate::routes", "the shared edge must not import the API"),
    ("crates/services/src/activities.rs", "crate::photos", "activities and photos must not import each other"),
    ("crates/services/src/photos", "crate::activities", "activities and photos must not import each other"),
];

/// Activity rows are written only by the one write path, which keeps derived data in step.
const WRITE_PATH: &str = "crates/services/src/activity_write.rs";
const ACTIVITY_WRITES: &[&str] = &[".insert_activity(", ".update_activity(", ".delete_activity("];

fn source_violations(root: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for (under, text, why) in FORBIDDEN_IN_SOURCES {
        for (file, source) in rust_files(&root.join(under))? {
            if source.contains(text) {
                found.push(format!("{} names `{text}`: {why}", relative(root, &file)));
            }
        }
    }
    for (file, source) in rust_files(&root.join("crates/services/src"))? {
        let shown = relative(root, &file);
        if shown == WRITE_PATH {
            continue;
        }
        let production = source.split("#[cfg(test)]").next().unwrap_or_default();
        for call in ACTIVITY_WRITES.iter().filter(|call| production.contains(*call)) {
            found.push(format!("{shown} calls `{call}…)`: activity writes go through {WRITE_PATH}"));
        }
    }
    Ok(found)
}

/// Every `.rs` file at or below `path` (a file or a directory), with its text.
fn rust_files(path: &Path) -> Result<Vec<(std::path::PathBuf, String)>, String> {
    let mut files = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(next) = pending.pop() {
        if next.is_dir() {
            let entries = std::fs::read_dir(&next).map_err(|e| format!("read {}: {e}", next.display()))?;
            pending.extend(entries.flatten().map(|entry| entry.path()));
        } else if next.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&next).map_err(|e| format!("read {}: {e}", next.display()))?;
            files.push((next, text));
        }
    }
    if files.is_empty() {
        return Err(format!("{} holds no Rust file: the layering table names a path that moved", path.display()));
    }
    Ok(files)
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap_or(file).display().to_string()
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
            ("stride-tracks", &[]),
            ("stride-concurrency", &[]),
            ("stride-repository", &["stride-domain", "stride-concurrency"]),
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
            ("stride-concurrency", &["stride-domain"]),
        ]);
        assert_eq!(
            violations(&bad),
            vec![
                "stride-concurrency must not depend on stride-domain",
                "stride-domain must not depend on stride-repository",
                "stride-http must not depend on stride-repository",
            ]
        );
    }

    #[test]
    fn the_sources_of_this_workspace_keep_the_module_invariants() {
        assert_eq!(source_violations(&crate::project_root()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn an_edge_naming_the_other_or_a_direct_activity_write_is_found() {
        let root = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in [
            ("crates/http/src/routes/a.rs", "use crate::pages::PageError;"),
            ("crates/http/src/pages/b.rs", "fn f() {}"),
            ("crates/http/src/edge/c.rs", "fn f() {}"),
            ("crates/services/src/activities.rs", "fn f() { uow.delete_activity(id); }"),
            ("crates/services/src/photos/d.rs", "fn f() {}"),
            ("crates/services/src/activity_write.rs", "fn f() { uow.insert_activity(a); }"),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        let found = source_violations(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("routes/a.rs names `crate::pages`"), "{found:?}");
        assert!(found[1].contains("activities.rs calls `.delete_activity(…)`"), "{found:?}");
    }

    #[test]
    fn an_unknown_crate_fails_until_it_is_placed_in_a_layer() {
        let unknown = graph(&[("stride-photos", &[])]);
        assert_eq!(violations(&unknown).len(), 1);
    }
}
