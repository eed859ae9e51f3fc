//! Go: `select` with `time.After`, a `default` case, and `<-ctx.Done()`. Rust: `tokio::select!`
//! waits on several futures and runs the branch of the first to finish (dropping the others);
//! `try_recv` is the non-blocking `default`; a `CancellationToken` is `ctx.Done()`.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    // Timeout: nothing arrives within 50 ms.
    let (_tx, mut rx) = mpsc::channel::<u32>(1);
    let timed_out = tokio::select! {
        value = rx.recv() => Some(value),
        () = tokio::time::sleep(Duration::from_millis(50)) => None,
    };
    assert_eq!(timed_out, None);

    // Default: look without waiting.
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(7).await.unwrap();
    assert_eq!(rx.try_recv(), Ok(7));

    // Cancellation: a worker stops as soon as its token is cancelled.
    let token = CancellationToken::new();
    let (ticked, mut first_tick) = mpsc::channel::<()>(1);
    let worker = tokio::spawn({
        let token = token.clone();
        async move {
            let mut ticks = 0;
            loop {
                tokio::select! {
                    () = token.cancelled() => return ticks,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {
                        ticks += 1;
                        let _ = ticked.try_send(());
                    }
                }
            }
        }
    });
    first_tick.recv().await; // the worker is running...
    token.cancel(); // ...until now
    let ticks = worker.await.unwrap();
    assert!(ticks > 0);
    println!("08_select: timeout fired, try_recv was the default case, worker stopped after {ticks} ticks");
}
