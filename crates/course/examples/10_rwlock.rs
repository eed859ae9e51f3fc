//! Go: `sync.RWMutex`. Rust: `RwLock` lets many readers in at once, or one writer alone —
//! for data read far more often than written (configuration, a routing table).

use std::sync::Arc;

use tokio::sync::RwLock;

#[tokio::main]
async fn main() {
    let config = Arc::new(RwLock::new(String::from("v1")));

    // Two readers hold the lock at the same time.
    let first = config.read().await;
    let second = config.read().await;
    assert_eq!((first.as_str(), second.as_str()), ("v1", "v1"));
    assert!(config.try_write().is_err(), "a writer waits while readers hold the lock");
    drop((first, second));

    *config.write().await = String::from("v2");
    assert_eq!(*config.read().await, "v2");
    println!("10_rwlock: two concurrent readers, then one exclusive writer");
}
