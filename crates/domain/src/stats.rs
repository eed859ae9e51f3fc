//! Statistics rules: which activities count for whom, and streaks.
//!
//! Streaks are computed from *runs*: maximal islands of consecutive local dates with at least
//! one activity. The repository keeps each user's runs up to date in the same transaction as
//! every activity write, using the edits this module decides (`add_day`, `remove_day`), so that
//! reading either streak touches one run, however long the history.

use chrono::NaiveDate;

use crate::{LocalDate, Relationship, Visibility};

/// Whose view of a user's numbers: the owner counts everything, a friend friends-only and
/// public activities, anyone else public ones (as Strava counts only public activities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatsScope {
    Owner,
    Friends,
    Public,
}

impl StatsScope {
    pub const ALL: [StatsScope; 3] = [StatsScope::Owner, StatsScope::Friends, StatsScope::Public];

    pub fn for_relationship(relationship: Relationship) -> Self {
        match relationship {
            Relationship::Owner => StatsScope::Owner,
            Relationship::Friend => StatsScope::Friends,
            Relationship::Stranger => StatsScope::Public,
        }
    }

    pub fn counts(&self, visibility: Visibility) -> bool {
        let viewer = match self {
            StatsScope::Owner => Relationship::Owner,
            StatsScope::Friends => Relationship::Friend,
            StatsScope::Public => Relationship::Stranger,
        };
        crate::can_view(viewer, visibility)
    }

    /// The scopes an activity with `visibility` counts in.
    pub fn counting(visibility: Visibility) -> impl Iterator<Item = StatsScope> {
        StatsScope::ALL.into_iter().filter(move |scope| scope.counts(visibility))
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            StatsScope::Owner => "owner",
            StatsScope::Friends => "friends",
            StatsScope::Public => "public",
        }
    }
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the Unix epoch is a valid date");

impl LocalDate {
    /// Days since 1970-01-01: how dates are stored, so runs are integer intervals.
    pub fn day_number(&self) -> i32 {
        (self.date() - EPOCH).num_days() as i32
    }

    pub fn from_day_number(day: i32) -> Self {
        LocalDate::new(EPOCH + chrono::TimeDelta::days(day.into()))
    }
}

/// An island of consecutive active days, inclusive at both ends (day numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Run {
    pub start: i32,
    pub end: i32,
}

impl Run {
    pub fn day(day: i32) -> Self {
        Self { start: day, end: day }
    }

    /// How many consecutive days the run covers (at least one).
    pub fn days(&self) -> u32 {
        (self.end - self.start + 1) as u32
    }
}

/// A change to a user's stored runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEdit {
    Insert(Run),
    Delete(Run),
    Replace { old: Run, new: Run },
}

/// The edits that make `day` active, given the run ending the day before and the run starting
/// the day after (if any). Call only when the day had no activity before.
pub fn add_day(day: i32, ending_before: Option<Run>, starting_after: Option<Run>) -> Vec<RunEdit> {
    match (ending_before, starting_after) {
        (Some(left), Some(right)) => {
            vec![RunEdit::Delete(right), RunEdit::Replace { old: left, new: Run { start: left.start, end: right.end } }]
        }
        (Some(left), None) => vec![RunEdit::Replace { old: left, new: Run { start: left.start, end: day } }],
        (None, Some(right)) => vec![RunEdit::Replace { old: right, new: Run { start: day, end: right.end } }],
        (None, None) => vec![RunEdit::Insert(Run::day(day))],
    }
}

/// The edits that make `day` inactive, given the run containing it. Call only when the day's
/// last activity went away.
pub fn remove_day(day: i32, containing: Run) -> Vec<RunEdit> {
    let Run { start, end } = containing;
    match (day == start, day == end) {
        (true, true) => vec![RunEdit::Delete(containing)],
        (true, false) => vec![RunEdit::Replace { old: containing, new: Run { start: day + 1, end } }],
        (false, true) => vec![RunEdit::Replace { old: containing, new: Run { start, end: day - 1 } }],
        (false, false) => vec![
            RunEdit::Replace { old: containing, new: Run { start, end: day - 1 } },
            RunEdit::Insert(Run { start: day + 1, end }),
        ],
    }
}

/// The current streak from the latest run that starts on or before `today`: its days up to
/// today if it reaches today or yesterday, else 0.
pub fn current_streak(latest_run_starting_by_today: Option<Run>, today: i32) -> u32 {
    match latest_run_starting_by_today {
        Some(run) if run.start <= today && run.end >= today - 1 => (run.end.min(today) - run.start + 1) as u32,
        _ => 0,
    }
}

/// Both streaks straight from a list of active days (any order, duplicates allowed): the
/// reference the maintained runs are checked against.
pub fn streaks_from_days(days: &[i32], today: i32) -> (u32, u32) {
    let mut days = days.to_vec();
    days.sort_unstable();
    days.dedup();
    let mut runs: Vec<Run> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some(run) if run.end + 1 == day => run.end = day,
            _ => runs.push(Run::day(day)),
        }
    }
    let longest = runs.iter().map(Run::days).max().unwrap_or(0);
    let latest_by_today = runs.iter().rev().find(|run| run.start <= today).copied();
    (current_streak(latest_by_today, today), longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(runs: &mut Vec<Run>, edits: Vec<RunEdit>) {
        for edit in edits {
            match edit {
                RunEdit::Insert(run) => runs.push(run),
                RunEdit::Delete(run) => runs.retain(|r| *r != run),
                RunEdit::Replace { old, new } => {
                    let slot = runs.iter_mut().find(|r| **r == old).expect("replaced run exists");
                    *slot = new;
                }
            }
        }
        runs.sort();
    }

    /// Maintains runs through `add_day`/`remove_day` the way the repository does.
    fn maintain(runs: &mut Vec<Run>, day: i32, active: bool) {
        if active {
            let left = runs.iter().find(|r| r.end == day - 1).copied();
            let right = runs.iter().find(|r| r.start == day + 1).copied();
            apply(runs, add_day(day, left, right));
        } else {
            let containing = *runs.iter().find(|r| r.start <= day && day <= r.end).expect("day is active");
            apply(runs, remove_day(day, containing));
        }
    }

    #[test]
    fn maintained_runs_always_equal_runs_recomputed_from_scratch() {
        // A deterministic pseudo-random walk of adds and removes over 60 days.
        let mut active = std::collections::BTreeSet::new();
        let mut runs = Vec::new();
        let mut seed: u64 = 0x5eed;
        for _ in 0..5_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let day = (seed >> 33) as i32 % 60;
            let now_active = !active.contains(&day);
            if now_active {
                active.insert(day);
            } else {
                active.remove(&day);
            }
            maintain(&mut runs, day, now_active);
            let days: Vec<i32> = active.iter().copied().collect();
            let mut expected: Vec<Run> = Vec::new();
            for d in days {
                match expected.last_mut() {
                    Some(r) if r.end + 1 == d => r.end = d,
                    _ => expected.push(Run::day(d)),
                }
            }
            assert_eq!(runs, expected);
        }
    }

    #[test]
    fn current_streak_counts_runs_reaching_today_or_yesterday() {
        let today = 100;
        assert_eq!(streaks_from_days(&[], today), (0, 0));
        assert_eq!(streaks_from_days(&[100, 100, 99, 98], today), (3, 3), "several activities on one day count once");
        assert_eq!(streaks_from_days(&[99, 98], today), (2, 2), "ending yesterday still counts");
        assert_eq!(streaks_from_days(&[98, 97], today), (0, 2), "a gap day breaks the current streak");
        assert_eq!(streaks_from_days(&[90, 91, 92, 93, 99, 100], today), (2, 4));
        assert_eq!(
            streaks_from_days(&[100, 101, 102], today),
            (1, 3),
            "future days do not lengthen the current streak"
        );
        assert_eq!(streaks_from_days(&[101], today), (0, 1));
    }

    #[test]
    fn scopes_count_what_their_viewer_may_see() {
        let counted = |v| StatsScope::counting(v).collect::<Vec<_>>();
        assert_eq!(counted(Visibility::Private), vec![StatsScope::Owner]);
        assert_eq!(counted(Visibility::Friends), vec![StatsScope::Owner, StatsScope::Friends]);
        assert_eq!(counted(Visibility::Public), StatsScope::ALL.to_vec());
    }

    #[test]
    fn day_numbers_round_trip() {
        let date = LocalDate::new(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        assert_eq!(LocalDate::from_day_number(date.day_number()), date);
        assert_eq!(LocalDate::new(EPOCH).day_number(), 0);
    }
}
