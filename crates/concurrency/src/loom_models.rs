//! Loom models of this crate's hand-written synchronisation (`cargo xtask loom`). Each model
//! has a seeded mutant (`--cfg stride_mutant=...`, set only by xtask) that loom must catch.

use loom::thread;

use crate::counters::Counters;
use crate::first_error::FirstError;
use crate::sync::Arc;

/// Mutant: `counters_lost_update` (increment as load + store).
#[test]
fn counters_never_lose_an_update() {
    loom::model(|| {
        let counters = Arc::new(Counters::default());
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let counters = counters.clone();
                thread::spawn(move || {
                    counters.queued();
                    counters.started();
                    counters.finished(true);
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let snapshot = counters.snapshot();
        assert_eq!((snapshot.queued, snapshot.running, snapshot.done), (0, 0, 2), "{snapshot:?}");
    });
}

/// Mutant: `first_error_check_then_act` (check and write under separate lock acquisitions).
#[test]
fn only_the_first_error_is_kept() {
    loom::model(|| {
        let first = Arc::new(FirstError::new());
        let racers: Vec<_> = (1..=2u32)
            .map(|n| {
                let first = first.clone();
                thread::spawn(move || (n, first.record(n)))
            })
            .collect();
        let results: Vec<(u32, bool)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<u32> = results.iter().filter(|(_, won)| *won).map(|(n, _)| *n).collect();
        assert_eq!(winners.len(), 1, "exactly one error is first: {results:?}");
        assert_eq!(first.take(), Some(winners[0]), "the kept error is the one told it was first");
    });
}
