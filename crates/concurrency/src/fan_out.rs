//! Bounded fan-out over fallible calls: the feed's concurrent chunk queries.
//!
//! A thin, named wrapper over `futures`' combinators (a well-kept crate beats our own code):
//! the value it adds is the vocabulary and the guarantees spelled out here. It runs its futures
//! *concurrently within the calling task* — ideal for I/O-bound calls (database queries, HTTP
//! requests), not for CPU work, which belongs on a CPU pool. Dropping the returned future
//! cancels every call still in flight.

use std::future::Future;

use futures::stream::{self, StreamExt, TryStreamExt};

/// Runs `f` on every item with at most `limit` calls in flight; results in input order. The
/// first error is returned and every call still in flight is cancelled (dropped); no call
/// starts after it.
pub async fn try_map_concurrent<T, R, E, F, Fut>(
    items: impl IntoIterator<Item = T>,
    limit: usize,
    f: F,
) -> Result<Vec<R>, E>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    stream::iter(items).map(f).buffered(limit.max(1)).try_collect().await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_limit_calls_run_at_once_and_order_is_kept() {
        let in_flight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let results: Result<Vec<u64>, ()> = try_map_concurrent(0..20u64, 3, |i| {
            let (in_flight, peak) = (&in_flight, &peak);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later items finish sooner, so completion order differs from input order.
                tokio::time::sleep(Duration::from_millis(100 - i * 3)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(i * 2)
            }
        })
        .await;
        assert_eq!(results, Ok((0..20).map(|i| i * 2).collect::<Vec<_>>()));
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_error_stops_the_rest() {
        let started = AtomicUsize::new(0);
        let result: Result<Vec<u32>, String> = try_map_concurrent(0..100u32, 4, |i| {
            let started = &started;
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                if i == 5 { Err(format!("item {i} failed")) } else { Ok(i) }
            }
        })
        .await;
        assert_eq!(result, Err("item 5 failed".to_owned()));
        assert!(started.load(Ordering::SeqCst) < 12, "no call starts long after the failure");
    }
}
