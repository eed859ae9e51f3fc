//! Go: return an error through a channel, or use errgroup. Rust: a task returns `Result`,
//! and a panic does not crash the program — it arrives as a `JoinError`. For "first error
//! cancels the rest", Stride's `TaskGroup` is errgroup.

use std::time::Duration;

use stride_concurrency::{GroupError, TaskGroup};

#[tokio::main]
async fn main() {
    let failing = tokio::spawn(async { Err::<u32, _>("disk full") });
    assert_eq!(failing.await.unwrap(), Err("disk full"));

    let panicking = tokio::spawn(async { panic!("bug") });
    let join_error = panicking.await.unwrap_err();
    assert!(join_error.is_panic(), "a panic is contained in its task");

    let mut group = TaskGroup::new();
    group.spawn(|_| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err("fetching friends failed".to_owned())
    });
    group.spawn(|token| async move {
        // A well-behaved task watches the group's token and stops early.
        token.cancelled().await;
        Ok(())
    });
    assert_eq!(group.wait().await, Err(GroupError::Failed("fetching friends failed".to_owned())));
    println!("03_task_errors: Result from a task, a contained panic, and errgroup-style first error");
}
