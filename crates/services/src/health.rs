//! Readiness and pool figures, so the http layer can report on the database without
//! depending on the repository crate.

use stride_concurrency::Deadline;
use stride_repository::{PoolStats, Store};

use crate::ServiceResult;

#[derive(Clone)]
pub struct HealthService<S> {
    store: S,
}

impl<S: Store> HealthService<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub async fn database_ready(&self, deadline: Deadline) -> ServiceResult<()> {
        Ok(self.store.ping(deadline).await?)
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.store.pool_stats()
    }

    pub fn backend_name(&self) -> &'static str {
        S::BACKEND.name()
    }
}
