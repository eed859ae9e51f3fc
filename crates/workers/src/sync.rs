//! The synchronisation primitives hand-written code in this crate may use.
//!
//! Normally parking_lot's (compiled from source, hence visible to ThreadSanitizer, unlike std's
//! futex-based locks); under `--cfg stride_loom`, loom's, so the loom models explore every
//! interleaving of exactly the code that ships. Nothing else in the crate imports locks or
//! atomics directly.

#[cfg(not(stride_loom))]
mod imp {
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A mutex whose `lock` cannot fail (parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(stride_loom)]
mod imp {
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("loom mutexes are not poisoned in models")
        }
    }
}

#[allow(unused_imports)]
pub(crate) use imp::*;
