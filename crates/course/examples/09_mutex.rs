//! Go: `sync.Mutex`. Rust: the mutex *owns* the data, so it cannot be touched without the lock.
//! Use `std::sync::Mutex` (or parking_lot) when the guard is never held across an `.await`;
//! use `tokio::sync::Mutex` when it must be, because a std guard held across an await can
//! block a runtime thread (and is not `Send`, so the compiler stops you in a spawned task).

use std::sync::{Arc, Mutex};

#[tokio::main]
async fn main() {
    let counter = Arc::new(Mutex::new(0u64));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..1_000 {
                    *counter.lock().unwrap() += 1; // guard dropped at the end of the statement
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), 8_000, "no update was lost");

    // Held across an await: the async mutex.
    let log = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut entries = log.lock().await;
            entries.push("start");
            tokio::task::yield_now().await; // still holding the lock: fine with tokio's mutex
            entries.push("end");
        })
    };
    writer.await.unwrap();
    assert_eq!(*log.lock().await, vec!["start", "end"]);
    println!("09_mutex: 8,000 increments from 8 tasks, none lost; an async mutex held across an await");
}
