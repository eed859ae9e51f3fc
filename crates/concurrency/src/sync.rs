//! The synchronisation primitives hand-written code in Stride may use (this crate's and
//! `stride-cache`'s resource pool).
//!
//! Normally parking_lot's (compiled from source, hence visible to ThreadSanitizer, unlike std's
//! futex-based locks); under `--cfg stride_loom`, loom's, so the loom models explore every
//! interleaving of exactly the code that ships. Nothing else in the crate imports locks or
//! atomics directly.

#[cfg(not(stride_loom))]
mod imp {
    pub use std::sync::Arc;
    pub use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// A mutex whose `lock` cannot fail (parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(stride_loom)]
mod imp {
    pub use loom::sync::Arc;
    pub use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().expect("loom mutexes are not poisoned in models")
        }
    }
}

pub use imp::*;
