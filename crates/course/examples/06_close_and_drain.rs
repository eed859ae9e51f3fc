//! Go: `close(ch)` and `for v := range ch`. Rust: a channel closes when its last `Sender` is
//! dropped; the receiver still gets every buffered value, then `None`. A receiver can also
//! close from its side (`Receiver::close`) and drain what is left.

use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let (tx, mut rx) = mpsc::channel(10);
    for i in 0..5 {
        tx.send(i).await.unwrap();
    }
    drop(tx); // "close": no more values will come
    let mut drained = Vec::new();
    while let Some(value) = rx.recv().await {
        drained.push(value);
    }
    assert_eq!(drained, vec![0, 1, 2, 3, 4], "buffered values survive the close");

    // Closing from the receiving side: senders see the close, buffered values remain.
    let (tx, mut rx) = mpsc::channel(10);
    tx.send("queued").await.unwrap();
    rx.close();
    assert!(tx.send("late").await.is_err(), "sending into a closed channel fails");
    assert_eq!(rx.recv().await, Some("queued"));
    assert_eq!(rx.recv().await, None);
    println!("06_close_and_drain: drained 5 values after close; a receiver-side close refused a late send");
}
