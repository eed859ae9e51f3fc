//! Go: `sync.WaitGroup` — Add, Done, Wait. Rust: a `JoinSet` owns a set of tasks; joining it
//! is the Wait, and there is no counter to get wrong (no Add/Done mismatch, no negative count).
//! Dropping the set aborts what is still running, so tasks cannot outlive their owner.

use std::time::Duration;

use tokio::task::JoinSet;

// Paused time: sleeps complete in deadline order instantly and deterministically.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let mut set = JoinSet::new();
    for worker in 0..5u64 {
        set.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10 * (5 - worker))).await;
            worker
        });
    }
    let mut finished = Vec::new();
    while let Some(result) = set.join_next().await {
        finished.push(result.unwrap());
    }
    // Results arrive in completion order: the worker that slept least finishes first.
    assert_eq!(finished, vec![4, 3, 2, 1, 0]);

    // Dropping a JoinSet aborts its tasks (a WaitGroup cannot do that).
    let mut abandoned = JoinSet::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    abandoned.spawn(async move {
        let _keep = tx;
        std::future::pending::<()>().await;
    });
    drop(abandoned);
    assert!(rx.await.is_err(), "the aborted task dropped its sender");
    println!("02_joinset_waitgroup: waited for 5 tasks in completion order; dropped set aborted its task");
}
