//! The ThreadSanitizer gate's proof of life: a real data race, compiled only into the
//! sanitizer build (`--cfg stride_tsan_canary`, set only by `cargo xtask race`) and run on its
//! own. If TSan does not report it, the gate is blind and `cargo xtask race` fails.
#![allow(unsafe_code)]

static mut COUNTER: u64 = 0;

#[test]
fn tsan_canary_two_threads_write_one_unsynchronised_counter() {
    let writers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..10_000 {
                    // SAFETY: deliberately unsound — this is the race TSan must report.
                    unsafe { *(&raw mut COUNTER) += 1 };
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // Read through the pointer too, so the writes cannot be optimised away.
    assert!(unsafe { *(&raw const COUNTER) } > 0);
}
