//! A cell that keeps the first error reported to it and refuses the rest — the heart of
//! errgroup semantics. Recording is check-and-set under one lock acquisition, so two tasks
//! failing at once can never both believe they were first (the check-then-act race).
//! Loom model: `loom_models::only_the_first_error_is_kept`.

use crate::sync::Mutex;

#[derive(Debug)]
pub(crate) struct FirstError<E> {
    // A sync lock: held for a few instructions, never across an await.
    slot: Mutex<Option<E>>,
}

impl<E> FirstError<E> {
    pub(crate) fn new() -> Self {
        Self { slot: Mutex::new(None) }
    }

    /// Stores `error` if no error was stored before; returns whether it was.
    pub(crate) fn record(&self, error: E) -> bool {
        #[cfg(not(stride_mutant = "first_error_check_then_act"))]
        {
            let mut slot = self.slot.lock();
            if slot.is_none() {
                *slot = Some(error);
                true
            } else {
                false
            }
        }
        // Seeded bug for the loom gate: the check and the write take the lock separately.
        #[cfg(stride_mutant = "first_error_check_then_act")]
        {
            let empty = self.slot.lock().is_none();
            if empty {
                *self.slot.lock() = Some(error);
            }
            empty
        }
    }

    pub(crate) fn take(&self) -> Option<E> {
        self.slot.lock().take()
    }
}
