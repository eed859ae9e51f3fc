//! What the benches of this crate share.

// Each bench includes this module and uses part of it.
#![allow(dead_code)]

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

/// Alternating rounds: how many rounds each side is timed, and the median taken.
pub const ROUNDS: usize = 9;

/// A side of an interleaved comparison: one call, boxed so sides of different types share a list.
pub type Side<'a> = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> + 'a>;

/// Median (over [`ROUNDS`] rounds) of the mean time per call of each side, in nanoseconds.
///
/// Each round runs `calls` calls of every side, starting from a different side each round, so
/// drift on a shared machine (a checkpoint, a neighbour, a trend) weighs on every side alike:
/// the ratios the gates read are between measurements taken side by side.
pub fn interleaved_all(rt: &tokio::runtime::Runtime, sides: &[Side<'_>], calls: u32) -> Vec<f64> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for round in 0..ROUNDS {
        for offset in 0..sides.len() {
            let index = (round + offset) % sides.len();
            let started = std::time::Instant::now();
            rt.block_on(async {
                for _ in 0..calls {
                    sides[index]().await;
                }
            });
            times[index].push(started.elapsed().as_nanos() as f64 / f64::from(calls));
        }
    }
    times
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}
