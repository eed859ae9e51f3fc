//! Go: `context.WithValue` for request-scoped values (a request id). Rust: `tokio::task_local!`
//! gives each task its own value for the duration of a future — no global state, no threading
//! the value through every signature. (In Stride, `tracing` spans carry the request id.)

tokio::task_local! {
    static REQUEST_ID: String;
}

async fn deep_in_the_call_stack() -> String {
    REQUEST_ID.with(|id| format!("handling {id}"))
}

#[tokio::main]
async fn main() {
    let a = tokio::spawn(REQUEST_ID.scope("req-a".to_owned(), deep_in_the_call_stack()));
    let b = tokio::spawn(REQUEST_ID.scope("req-b".to_owned(), deep_in_the_call_stack()));
    assert_eq!(a.await.unwrap(), "handling req-a");
    assert_eq!(b.await.unwrap(), "handling req-b");
    assert!(REQUEST_ID.try_with(|_| ()).is_err(), "outside a scope there is no value");
    println!("13_task_local: two concurrent tasks each saw their own request id");
}
