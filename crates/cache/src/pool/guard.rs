//! The RAII guard a lent resource lives in: whatever way the holder lets go of it (drop, panic,
//! cancellation), the resource or its capacity goes back to the pool.

use std::ops::{Deref, DerefMut};

use stride_concurrency::sync::Arc;

use super::{Grant, Inner, Manager};

/// A lent resource. Dereferences to it; gives it back when dropped.
pub struct Pooled<M: Manager> {
    inner: Arc<Inner<M>>,
    /// `Some` until drop or `discard` takes it.
    resource: Option<M::Resource>,
}

impl<M: Manager> Pooled<M> {
    pub(super) fn lend(inner: Arc<Inner<M>>, resource: M::Resource) -> Self {
        Self { inner, resource: Some(resource) }
    }
}

impl<M: Manager> Pooled<M> {
    /// Drops the resource instead of returning it (the holder saw it fail); its capacity is
    /// handed on, so a replacement will be made when needed.
    pub fn discard(mut self) {
        drop(self.resource.take());
        self.inner.give_back_and_wake(Grant::Capacity);
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Resource;
    fn deref(&self) -> &Self::Target {
        self.resource.as_ref().expect("present until drop")
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.resource.as_mut().expect("present until drop")
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(resource) = self.resource.take() else {
            return;
        };
        let grant = if self.inner.manager.is_broken(&resource) {
            drop(resource);
            Grant::Capacity
        } else {
            Grant::Resource(resource)
        };
        self.inner.give_back_and_wake(grant);
    }
}
