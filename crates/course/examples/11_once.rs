//! Go: `sync.Once`. Rust: `std::sync::OnceLock` for a value computed once, synchronously;
//! `tokio::sync::OnceCell` when computing it needs `.await`. Concurrent callers all wait for
//! the single initialisation and share its result.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::OnceCell;

static SETTINGS: OnceLock<String> = OnceLock::new();
static INITIALISED: AtomicUsize = AtomicUsize::new(0);
static CONNECTION: OnceCell<u32> = OnceCell::const_new();

async fn connect() -> u32 {
    INITIALISED.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    42
}

#[tokio::main]
async fn main() {
    let settings = SETTINGS.get_or_init(|| "loaded once".to_owned());
    assert_eq!(settings, "loaded once");
    assert_eq!(SETTINGS.get_or_init(|| "never".to_owned()), "loaded once");

    let callers: Vec<_> = (0..20).map(|_| tokio::spawn(async { *CONNECTION.get_or_init(connect).await })).collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 42);
    }
    assert_eq!(INITIALISED.load(Ordering::SeqCst), 1, "20 concurrent callers, one initialisation");
    println!("11_once: OnceLock and an async OnceCell initialised exactly once");
}
