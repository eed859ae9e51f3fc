//! What the benches of this crate share.

/// Writes a measurement where `cargo xtask bench` reads gates from, in criterion's layout
/// (`<target>/criterion/interleaved/<id>/new/estimates.json`, the value as the median).
pub fn record(id: &str, value: f64) {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("criterion/interleaved").join(id).join("new");
    std::fs::create_dir_all(&dir).expect("create the interleaved results directory");
    let json = format!("{{\"median\":{{\"point_estimate\":{value}}}}}");
    std::fs::write(dir.join("estimates.json"), json).expect("write interleaved result");
}
