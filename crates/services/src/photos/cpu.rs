//! The CPU budget of photo processing, shared by every request of the process.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{ServiceError, ServiceResult};

/// At most `slots` closures run at once on tokio's blocking pool; the rest wait their turn in
/// FIFO order (tokio's semaphore is fair). A slot is held by the blocking closure itself, not by
/// the future awaiting it: a caller that gives up does not free the core its decode still uses.
#[derive(Clone, Debug)]
pub struct CpuPool {
    slots: Arc<Semaphore>,
}

impl CpuPool {
    pub fn new(slots: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots.max(1))) }
    }

    /// One slot per core the process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
        let slot =
            self.slots.clone().acquire_owned().await.map_err(|_| ServiceError::Internal("cpu pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("photo processing panicked: {e}")))
    }

    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_than_its_slots_run_at_once() {
        let pool = CpuPool::new(2);
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, peak, barrier) = (pool.clone(), running.clone(), peak.clone(), barrier.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        // Two at a time meet here; a third would mean the bound leaked.
                        barrier.wait();
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
