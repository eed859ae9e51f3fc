//! Inflating one entry of an archive on the blocking pool: its bytes counted as they arrive,
//! into the archive's 8 GiB and against the one "exclusive" permit an item needs past 8 MiB
//! (so two big entries are never in memory together), and the CPU slot it holds given up
//! while it waits for that permit (whose holder may be waiting for a slot to be parsed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use stride_tracks::{Archive, EntryError, MAX_INFLATED_BYTES};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::archive::SharedFile;

/// Past this many bytes an item needs the exclusive permit to grow further.
const EXCLUSIVE_ABOVE: u64 = 8 << 20;

/// Why an entry was not inflated.
pub(super) enum Inflation {
    Entry(EntryError),
    /// The archive's entries together passed 8 GiB: an archive-level failure.
    OverTotal,
}

/// Counts an entry's bytes as they inflate: into the archive's total, and against the
/// exclusive permit past [`EXCLUSIVE_ABOVE`].
pub(super) struct Meter {
    /// The CPU slot the inflation holds, given up while it waits for the exclusive permit
    /// (whose holder may be waiting for a slot to be parsed).
    cpu: Option<OwnedSemaphorePermit>,
    cpu_slots: Arc<Semaphore>,
    total: Arc<AtomicU64>,
    exclusive: Arc<Semaphore>,
    counted: u64,
    permit: Option<OwnedSemaphorePermit>,
    over_total: bool,
}

impl Meter {
    /// A meter for one entry, holding its CPU slot.
    pub(super) fn new(
        cpu: OwnedSemaphorePermit,
        cpu_slots: Arc<Semaphore>,
        total: Arc<AtomicU64>,
        exclusive: Arc<Semaphore>,
    ) -> Self {
        Self { cpu: Some(cpu), cpu_slots, total, exclusive, counted: 0, permit: None, over_total: false }
    }

    fn grown(&mut self, held: u64) -> Result<(), EntryError> {
        let delta = held.saturating_sub(self.counted);
        self.counted = held;
        let total = self.total.fetch_add(delta, Ordering::Relaxed) + delta;
        if total > stride_tracks::archive::MAX_ARCHIVE_INFLATED_BYTES {
            self.over_total = true;
            return Err(EntryError::TooLarge("the archive's total".into()));
        }
        if held > EXCLUSIVE_ABOVE && self.permit.is_none() {
            // On the blocking pool: waiting here blocks no async worker, and the holder needs
            // nothing this thread has to finish.
            if let Ok(permit) = self.exclusive.clone().try_acquire_owned() {
                self.permit = Some(permit);
            } else {
                self.cpu = None;
                self.permit = futures::executor::block_on(self.exclusive.clone().acquire_owned()).ok();
                self.cpu = futures::executor::block_on(self.cpu_slots.clone().acquire_owned()).ok();
            }
        }
        Ok(())
    }

    fn checked<T>(&mut self, read: Result<T, EntryError>) -> Result<T, Inflation> {
        self.counted = 0;
        read.map_err(|error| if self.over_total { Inflation::OverTotal } else { Inflation::Entry(error) })
    }
}

pub(super) type InflatedEntry = (Bytes, Bytes, [u8; 32], Option<OwnedSemaphorePermit>);

/// The entry as stored, its plain bytes (gunzipped when it is gzip) and their SHA-256.
pub(super) fn inflate_entry(
    mut archive: Archive<SharedFile>,
    entry: usize,
    mut meter: Meter,
) -> Result<InflatedEntry, Inflation> {
    let raw = archive.read_entry(entry, MAX_INFLATED_BYTES, &mut |held| meter.grown(held));
    let raw = meter.checked(raw)?;
    let plain = match stride_tracks::gunzip_capped(&raw, MAX_INFLATED_BYTES, &mut |held| meter.grown(held)) {
        Some(plain) => Some(meter.checked(plain)?),
        None => None,
    };
    let raw = Bytes::from(raw);
    let plain = plain.map_or_else(|| raw.clone(), Bytes::from);
    let sha = stride_tracks::sha256(&plain);
    Ok((raw, plain, sha, meter.permit.take()))
}
