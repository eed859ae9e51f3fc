//! How one unit of work ended. Shared by the worker pool and the pipeline so that "every
//! accepted item yields exactly one outcome" has one vocabulary.

use std::any::Any;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, E> {
    Ok(T),
    Err(E),
    /// The job panicked; the message is the panic payload when it was a string.
    Panicked(String),
    /// The job was accepted but cancelled (shutdown, or a sibling's failure) before it finished.
    Cancelled,
}

impl<T, E> Outcome<T, E> {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Ok(value) => Some(value),
            _ => None,
        }
    }
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}
