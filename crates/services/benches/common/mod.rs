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

/// Autovacuum would otherwise wake on freshly seeded tables in the middle of a measurement and
/// take one of the two cores from whichever side happens to be running: the gates measure the
/// settled database a real user has.
pub async fn settle_postgres(url: &str, tables: &[&str]) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    // One statement at a time: several in one simple query run as one transaction block,
    // where VACUUM cannot run.
    let vacuums = tables.iter().map(|table| format!("VACUUM (ANALYZE) {table}"));
    for statement in vacuums.chain(["CHECKPOINT".to_owned()]) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut conn).await.unwrap();
    }
}

/// A side of an interleaved comparison: one call, boxed so sides of different types share a list.
pub type Side<'a> = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> + 'a>;

/// Median (over [`ROUNDS`] rounds) of the mean time per call of each side, in nanoseconds.
///
/// Each round runs `calls` calls of every side, starting from a different side each round, so
/// drift on a shared machine (a checkpoint, a neighbour, a trend) weighs on every side alike:
/// the ratios the gates read are between measurements taken side by side.
pub fn interleaved_all(rt: &tokio::runtime::Runtime, sides: &[Side<'_>], calls: u32) -> Vec<f64> {
    interleaved_rounds(rt, sides, calls, ROUNDS)
}

/// [`interleaved_all`] with `rounds` timed rounds, after one untimed round of every side (its
/// connections opened, its statements prepared and its pages cached before anything counts).
pub fn interleaved_rounds(rt: &tokio::runtime::Runtime, sides: &[Side<'_>], calls: u32, rounds: usize) -> Vec<f64> {
    rt.block_on(async {
        for side in sides {
            side().await;
        }
    });
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
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
