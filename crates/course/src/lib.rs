//! The concurrency course: thirteen runnable lessons (`examples/`), each asserting what it
//! teaches, from plain tasks and channels to the toolkit's `Pipeline` and `TaskGroup`.
//! `cargo xtask examples` runs them all; docs/concurrency-course.md is the text that goes with
//! them. This crate sits beside `stride-concurrency`, outside the product's path: no product
//! crate depends on it, and it depends on nothing but the toolkit.

#![forbid(unsafe_code)]

/// The lessons, in order, as `cargo run -p stride-course --example NAME` takes them.
pub const LESSONS: [&str; 13] = [
    "01_tasks",
    "02_joinset_waitgroup",
    "03_task_errors",
    "04_channels",
    "05_channel_directions",
    "06_close_and_drain",
    "07_pipeline",
    "08_select",
    "09_mutex",
    "10_rwlock",
    "11_once",
    "12_cancellation",
    "13_task_local",
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_lesson_listed_is_an_example_and_every_example_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
            .collect();
        found.sort();
        assert_eq!(found, super::LESSONS.to_vec());
    }
}
