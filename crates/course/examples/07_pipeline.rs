//! Go: a pipeline of goroutines joined by channels (generate → square → sum). Rust: the same
//! by hand with tasks and bounded channels, then with Stride's `Pipeline`, which adds
//! per-stage concurrency, first-error cancellation and one outcome per item.

use stride_concurrency::{Outcome, Pipeline};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let (numbers_tx, mut numbers_rx) = mpsc::channel(4);
    let (squares_tx, mut squares_rx) = mpsc::channel(4);
    let generate = tokio::spawn(async move {
        for n in 1..=10u64 {
            numbers_tx.send(n).await.unwrap();
        }
    });
    let square = tokio::spawn(async move {
        while let Some(n) = numbers_rx.recv().await {
            squares_tx.send(n * n).await.unwrap();
        }
    });
    let mut sum = 0;
    while let Some(sq) = squares_rx.recv().await {
        sum += sq;
    }
    generate.await.unwrap();
    square.await.unwrap();
    assert_eq!(sum, 385);

    let pipeline = Pipeline::<u64, u64, String>::builder(4)
        .stage("square", 3, |n: u64| async move { Ok(n * n) })
        .stage("check", 2, |sq: u64| async move { if sq > 50 { Err(format!("{sq} is too big")) } else { Ok(sq) } })
        .build();
    let outcomes = pipeline.run(1..=10).await;
    // The first error stops intake, so fewer than ten items may have been accepted (how many
    // depends on scheduling); what is guaranteed is exactly one outcome per accepted item, and
    // items are accepted in order, so their sequence numbers are 0..n with no gap or repeat.
    let mut accepted: Vec<u64> = outcomes.iter().map(|(seq, _)| *seq).collect();
    accepted.sort_unstable();
    assert!((1..=10).contains(&accepted.len()), "{} outcomes", accepted.len());
    assert_eq!(accepted, (0..accepted.len() as u64).collect::<Vec<_>>(), "one outcome per accepted item");
    assert!(outcomes.iter().any(|(_, o)| matches!(o, Outcome::Err(_))));
    println!("07_pipeline: hand-made pipeline summed {sum}; Pipeline stopped at the first error");
}
