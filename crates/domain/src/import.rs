//! Imports: one upload of track files, each file an item, processed in file order by a
//! durable job. The states and what moves them:
//!
//! ```text
//! import: queued ──job starts──▶ running ──last item──▶ done
//!            │                      ├──the job gave up──▶ failed (error)
//!            └──────cancel──────────┴──cancel──▶ cancelled (items not started: cancelled)
//! item:   queued ──▶ imported (activity) | duplicate (the activity it repeats) | failed (error)
//!                    | cancelled
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ActivityId, ImportId, UserId};

macro_rules! string_enum {
    ($name:ident, $error:ident, $message:literal, [$($variant:ident => $text:literal),+ $(,)?]) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        #[derive(Debug, thiserror::Error, PartialEq, Eq)]
        #[error($message)]
        pub struct $error;

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or($error)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(ImportState, ImportStateError, "not an import state", [
    Queued => "queued",
    Running => "running",
    Done => "done",
    Failed => "failed",
    Cancelled => "cancelled",
]);

string_enum!(ItemState, ItemStateError, "not an import item state", [
    Queued => "queued",
    Imported => "imported",
    Duplicate => "duplicate",
    Failed => "failed",
    Cancelled => "cancelled",
]);

impl ImportState {
    /// Queued or running: counts against the user's limit, and can still be cancelled.
    pub fn is_active(&self) -> bool {
        matches!(self, ImportState::Queued | ImportState::Running)
    }
}

/// Why an import or an item failed, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into() }
    }
}

/// An import as stored, with its counters kept in the transactions that move its items.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub id: ImportId,
    pub user_id: UserId,
    pub state: ImportState,
    /// The sport the form gave, for files that name none.
    pub sport: Option<String>,
    pub visibility: String,
    /// Items, once known.
    pub total: Option<u32>,
    pub imported: u32,
    pub duplicate: u32,
    pub failed: u32,
    pub cancelled: u32,
    pub error: Option<Problem>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The stored zip while an archive's import needs it; `None` for separate files.
    pub archive_key: Option<String>,
    /// Items per second over the running attempt, as its job last recorded it.
    pub rate_per_s: Option<f64>,
}

impl Import {
    /// Items settled (in any state but queued).
    pub fn settled(&self) -> u32 {
        self.imported + self.duplicate + self.failed + self.cancelled
    }

    /// Seconds until the last item at the recorded rate, while running with a known total.
    pub fn eta_s(&self) -> Option<f64> {
        let rate = self.rate_per_s.filter(|rate| *rate > 0.0 && self.state == ImportState::Running)?;
        let left = self.total?.saturating_sub(self.settled());
        Some((f64::from(left) / rate).round())
    }
}

/// One file of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub import_id: ImportId,
    pub index: u32,
    /// The file name as sent (for display only).
    pub name: String,
    /// Where the file as sent is stored.
    pub blob_key: String,
    pub bytes: u64,
    pub state: ItemState,
    pub activity_id: Option<ActivityId>,
    pub error: Option<Problem>,
    pub warnings: Vec<Problem>,
}

/// The blob an import item's file is stored under.
pub fn import_item_blob(import: ImportId, index: u32) -> String {
    format!("imports/{import}/{index:05}")
}

/// The blob an archive is stored under while its import runs.
pub fn import_archive_blob(import: ImportId) -> String {
    format!("imports/{import}/archive.zip")
}
