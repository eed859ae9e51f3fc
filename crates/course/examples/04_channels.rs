//! Go: `make(chan T)` (unbuffered: a send waits for a receiver) and `make(chan T, n)`.
//! Rust: std's `sync_channel(0)` is a true rendezvous between threads; tokio's
//! `mpsc::channel(n)` is the bounded async channel — `send` waits while it is full.

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    // Unbuffered: the sender cannot finish `send` until the receiver takes the value.
    let (tx, rx) = std::sync::mpsc::sync_channel::<&str>(0);
    let sender = std::thread::spawn(move || {
        tx.send("ping").unwrap(); // blocks here until main receives
        "sent"
    });
    std::thread::sleep(Duration::from_millis(20)); // illustrative only: the sender is parked
    assert!(!sender.is_finished(), "an unbuffered send waits for its receiver");
    assert_eq!(rx.recv().unwrap(), "ping");
    assert_eq!(sender.join().unwrap(), "sent");

    // Bounded: two slots; the third send waits until a slot frees up (backpressure).
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    assert!(tx.send(3).now_or_never().is_none(), "a full channel makes the sender wait");
    assert_eq!(rx.recv().await, Some(1));
    tx.send(3).await.unwrap();
    assert_eq!((rx.recv().await, rx.recv().await), (Some(2), Some(3)));
    println!("04_channels: a rendezvous hand-off and a bounded channel pushing back");
}
