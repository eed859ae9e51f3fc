//! Go: `context.WithTimeout`, `WithDeadline`, `WithCancel`, and passing ctx down. Rust:
//! dropping a future cancels it; `tokio::time::timeout` drops the work when time is up;
//! Stride's `Deadline` is passed *down* through every call (as ctx is), and a
//! `CancellationToken` with child tokens cancels a whole tree of tasks.

use std::time::Duration;

use stride_concurrency::{Deadline, DeadlineExceeded};
use tokio_util::sync::CancellationToken;

/// A "database call" that honours the deadline it is given.
async fn query(deadline: Deadline, takes: Duration) -> Result<&'static str, DeadlineExceeded> {
    deadline
        .run(async move {
            tokio::time::sleep(takes).await;
            "rows"
        })
        .await
}

/// A "request handler": one deadline for the whole request, shared by every call beneath it.
async fn handler(deadline: Deadline) -> Result<Vec<&'static str>, DeadlineExceeded> {
    let first = query(deadline, Duration::from_millis(30)).await?;
    let second = query(deadline, Duration::from_millis(30)).await?;
    Ok(vec![first, second])
}

// Paused time: sleeps complete in deadline order instantly and deterministically.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(handler(Deadline::after(Duration::from_millis(200))).await, Ok(vec!["rows", "rows"]));
    // 50 ms is enough for the first call, not for both: the second is cut off.
    assert_eq!(handler(Deadline::after(Duration::from_millis(50))).await, Err(DeadlineExceeded));

    let timed_out = tokio::time::timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
    assert!(timed_out.is_err());

    // Cancelling a parent token cancels its children, like cancelling a parent context.
    let parent = CancellationToken::new();
    let children: Vec<_> = (0..3)
        .map(|_| {
            let child = parent.child_token();
            tokio::spawn(async move { child.cancelled().await })
        })
        .collect();
    parent.cancel();
    for child in children {
        child.await.unwrap();
    }
    println!("12_cancellation: a shared deadline cut the second query; a parent token cancelled 3 children");
}
