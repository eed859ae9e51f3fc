//! Go: `chan<- T` (send-only) and `<-chan T` (receive-only) parameters. Rust: the two halves
//! are different types, `Sender<T>` and `Receiver<T>`; a function that takes a `Sender` cannot
//! receive, and the compiler enforces it.

use tokio::sync::mpsc::{self, Receiver, Sender};

/// Can only send: there is no `recv` on a `Sender`.
async fn produce(out: Sender<u32>, count: u32) {
    for i in 0..count {
        out.send(i).await.expect("the consumer is alive");
    }
}

/// Can only receive.
async fn consume(mut input: Receiver<u32>) -> u32 {
    let mut total = 0;
    while let Some(value) = input.recv().await {
        total += value;
    }
    total
}

#[tokio::main]
async fn main() {
    let (tx, rx) = mpsc::channel(4);
    let producer = tokio::spawn(produce(tx, 100));
    let total = consume(rx).await;
    producer.await.unwrap();
    assert_eq!(total, (0..100).sum());
    println!("05_channel_directions: Sender-only producer, Receiver-only consumer, total {total}");
}
