//! Statement texts built for a number of list elements (authors of a feed chunk, fences of a
//! job batch, efforts of an activity), where the engine has no array parameter.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The text of `shape` for `count` elements, made once per (shape, count) and kept. Callers
/// bound the counts they ask for (a chunk size, powers of two, a per-statement maximum), so the
/// cache is bounded, and the driver's prepared statement cache (keyed by text) reuses each plan.
pub(crate) fn statement(shape: &'static str, count: usize, build: impl FnOnce() -> String) -> &'static str {
    static TEXTS: OnceLock<Mutex<HashMap<(&'static str, usize), &'static str>>> = OnceLock::new();
    let texts = TEXTS.get_or_init(Default::default);
    let mut texts = texts.lock().unwrap_or_else(|e| e.into_inner());
    texts.entry((shape, count)).or_insert_with(|| Box::leak(build().into_boxed_str()))
}
