//! Bounded fan-out and fan-in over futures and streams.
//!
//! These are thin, named wrappers over `futures`' combinators (a well-kept crate beats our own
//! code): the value they add is the vocabulary and the guarantees spelled out here. All of
//! them run their futures *concurrently within the calling task* — ideal for I/O-bound calls
//! (database queries, HTTP requests), not for CPU work, which belongs on `spawn_blocking` or
//! the worker pool. Dropping the returned future cancels every call still in flight.

use std::future::Future;

use futures::stream::{self, Stream, StreamExt, TryStreamExt};

/// Runs `f` on every item with at most `limit` calls in flight; results in input order.
pub async fn map_concurrent<T, R, F, Fut>(items: impl IntoIterator<Item = T>, limit: usize, f: F) -> Vec<R>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(items).map(f).buffered(limit.max(1)).collect().await
}

/// Like [`map_concurrent`], but results in order of completion.
pub async fn map_concurrent_unordered<T, R, F, Fut>(items: impl IntoIterator<Item = T>, limit: usize, f: F) -> Vec<R>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = R>,
{
    stream::iter(items).map(f).buffer_unordered(limit.max(1)).collect().await
}

/// Like [`map_concurrent`] for fallible calls: the first error is returned and every call
/// still in flight is cancelled (dropped); no call starts after it.
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

/// Merges several streams into one that yields items as soon as any source has one, and
/// ends when all sources have ended. Fair: no source can starve the others.
pub fn fan_in<S>(sources: impl IntoIterator<Item = S>) -> impl Stream<Item = S::Item>
where
    S: Stream + Unpin,
{
    stream::select_all(sources)
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
        let results = map_concurrent(0..20u64, 3, |i| {
            let (in_flight, peak) = (&in_flight, &peak);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later items finish sooner, so completion order differs from input order.
                tokio::time::sleep(Duration::from_millis(100 - i * 3)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(results, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn unordered_results_arrive_in_completion_order() {
        let results = map_concurrent_unordered([30u64, 10, 20], 3, |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .await;
        assert_eq!(results, vec![10, 20, 30]);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fan_in_yields_every_item_of_every_source() {
        let sources = (0..4).map(|s| stream::iter((0..25).map(move |i| s * 100 + i)).boxed());
        let mut merged: Vec<i32> = fan_in(sources).collect().await;
        merged.sort();
        let mut expected: Vec<i32> = (0..4).flat_map(|s| (0..25).map(move |i| s * 100 + i)).collect();
        expected.sort();
        assert_eq!(merged, expected);
    }
}
