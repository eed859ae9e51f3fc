//! Durable background jobs as values: their states and the one rule of how a state may change.
//!
//! ```text
//!              enqueue                 claim (attempt + 1)
//!   ─────────────────────▶ available ─────────────────────▶ running ──complete──▶ completed
//!                             ▲   ▲                           │  │
//!        retry (CLI) / snooze │   └──── fail, attempts left ──┘  ├──fail, none left──▶ discarded
//!                             │         (retryable at run_at)    ├──lease lost on last attempt──▶ discarded
//!                             │                                  └──cancel (CLI)──▶ cancelled
//!   retryable ── claim ──▶ running; a running row whose lease expired is claimed again (rescue)
//! ```
//!
//! Every transition out of `running` is fenced by the attempt that owns it: it matches
//! `id AND attempt AND state = 'running'`, so a worker whose lease was taken over changes
//! nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::JobId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    Available,
    Running,
    Completed,
    Retryable,
    Discarded,
    Cancelled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("state must be one of available, running, completed, retryable, discarded, cancelled")]
pub struct JobStateError;

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Available,
        JobState::Running,
        JobState::Completed,
        JobState::Retryable,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Retryable => "retryable",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Final states are never left again except by an operator's `retry`.
    pub fn is_final(&self) -> bool {
        matches!(self, JobState::Completed | JobState::Discarded | JobState::Cancelled)
    }
}

impl FromStr for JobState {
    type Err = JobStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s).ok_or(JobStateError)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to put on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: JobId,
    /// What runs it, e.g. `maintenance.purge`.
    pub kind: String,
    /// JSON text, given to the handler as is.
    pub payload: String,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    /// While a job with this key is not final, enqueueing another with it is a no-op.
    pub unique_key: Option<String>,
}

impl NewJob {
    /// A job of `kind` due at `now`, with a fresh id and no unique key: what a write enqueues
    /// in its own transaction for work that follows it.
    pub fn due(kind: &str, payload: String, max_attempts: u32, now: DateTime<Utc>) -> Self {
        Self { id: JobId::new(), kind: kind.to_owned(), payload, max_attempts, run_at: now, unique_key: None }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    pub state: JobState,
    /// Attempts started so far; the running attempt's number while `running`.
    pub attempt: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A claimed attempt: the job and the fence every later transition must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: Job,
    pub lease_until: DateTime<Utc>,
}

impl Lease {
    pub fn id(&self) -> JobId {
        self.job.id
    }

    pub fn attempt(&self) -> u32 {
        self.job.attempt
    }

    /// Whether a failure of this attempt leaves another.
    pub fn may_retry(&self) -> bool {
        self.job.attempt < self.job.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_only_three_are_final() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        let finals: Vec<JobState> = JobState::ALL.into_iter().filter(JobState::is_final).collect();
        assert_eq!(finals, vec![JobState::Completed, JobState::Discarded, JobState::Cancelled]);
        assert_eq!("done".parse::<JobState>(), Err(JobStateError));
    }
}
