//! Go: `go f()`, `go f(x)`, many goroutines. Rust: `tokio::spawn` returns a `JoinHandle`, and
//! a task that captures values takes ownership of them (`async move`), so no data race on
//! arguments is possible.

#[tokio::main]
async fn main() {
    // A basic task: runs concurrently with main; awaiting the handle gives its result.
    let hello = tokio::spawn(async { "hello from a task" });
    assert_eq!(hello.await.unwrap(), "hello from a task");

    // With arguments: the task owns its copy of `name` (`move`), like passing by value in Go.
    let name = String::from("stride");
    let greeting = tokio::spawn(async move { format!("hi, {name}") });
    assert_eq!(greeting.await.unwrap(), "hi, stride");

    // Many tasks: 10,000 are cheap (a few hundred bytes each, like goroutines).
    let handles: Vec<_> = (0..10_000u64).map(|i| tokio::spawn(async move { i * i })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    assert_eq!(sum, (0..10_000u64).map(|i| i * i).sum());
    println!("01_tasks: spawned 10,002 tasks; results collected through their JoinHandles");
}
