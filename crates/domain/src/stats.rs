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
            Relationship::Stranger | Relationship::Blocked => StatsScope::Public,
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

/// A local date as days since 1970-01-01: how dates are stored, so streak runs are integer
/// intervals that both backends can compare and index alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayNumber(i32);

impl DayNumber {
    pub const fn new(days_since_epoch: i32) -> Self {
        Self(days_since_epoch)
    }

    pub const fn get(self) -> i32 {
        self.0
    }
}

impl std::ops::Add<i32> for DayNumber {
    type Output = DayNumber;
    fn add(self, days: i32) -> DayNumber {
        DayNumber(self.0 + days)
    }
}

impl std::ops::Sub<i32> for DayNumber {
    type Output = DayNumber;
    fn sub(self, days: i32) -> DayNumber {
        DayNumber(self.0 - days)
    }
}

impl std::ops::Sub for DayNumber {
    /// Days from `other` to `self`.
    type Output = i32;
    fn sub(self, other: DayNumber) -> i32 {
        self.0 - other.0
    }
}

impl std::fmt::Display for DayNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", LocalDate::from_day_number(*self).date())
    }
}

impl DayNumber {
    /// The Monday of this day's ISO week (weeks start on Monday; 1970-01-01 was a Thursday).
    pub fn week_start(self) -> DayNumber {
        DayNumber(self.0 - (self.0 + 3).rem_euclid(7))
    }
}

impl LocalDate {
    pub fn day_number(&self) -> DayNumber {
        DayNumber((self.date() - EPOCH).num_days() as i32)
    }

    pub fn from_day_number(day: DayNumber) -> Self {
        LocalDate::new(EPOCH + chrono::TimeDelta::days(day.0.into()))
    }
}

/// An island of consecutive active days, inclusive at both ends: the unit a streak is made of
/// (not to be confused with `Sport::Run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreakRun {
    pub start: DayNumber,
    pub end: DayNumber,
}

impl StreakRun {
    pub fn day(day: DayNumber) -> Self {
        Self { start: day, end: day }
    }

    /// How many consecutive days the run covers (at least one).
    pub fn days(&self) -> u32 {
        (self.end - self.start + 1) as u32
    }
}

/// A change to a user's stored runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreakRunEdit {
    Insert(StreakRun),
    Delete(StreakRun),
    Replace { old: StreakRun, new: StreakRun },
}

/// The edits that make `day` active, given the run ending the day before and the run starting
/// the day after (if any). Call only when the day had no activity before.
pub fn add_day(
    day: DayNumber,
    ending_before: Option<StreakRun>,
    starting_after: Option<StreakRun>,
) -> Vec<StreakRunEdit> {
    match (ending_before, starting_after) {
        (Some(left), Some(right)) => {
            vec![
                StreakRunEdit::Delete(right),
                StreakRunEdit::Replace { old: left, new: StreakRun { start: left.start, end: right.end } },
            ]
        }
        (Some(left), None) => {
            vec![StreakRunEdit::Replace { old: left, new: StreakRun { start: left.start, end: day } }]
        }
        (None, Some(right)) => {
            vec![StreakRunEdit::Replace { old: right, new: StreakRun { start: day, end: right.end } }]
        }
        (None, None) => vec![StreakRunEdit::Insert(StreakRun::day(day))],
    }
}

/// The edits that make `day` inactive, given the run containing it. Call only when the day's
/// last activity went away.
pub fn remove_day(day: DayNumber, containing: StreakRun) -> Vec<StreakRunEdit> {
    let StreakRun { start, end } = containing;
    match (day == start, day == end) {
        (true, true) => vec![StreakRunEdit::Delete(containing)],
        (true, false) => vec![StreakRunEdit::Replace { old: containing, new: StreakRun { start: day + 1, end } }],
        (false, true) => vec![StreakRunEdit::Replace { old: containing, new: StreakRun { start, end: day - 1 } }],
        (false, false) => vec![
            StreakRunEdit::Replace { old: containing, new: StreakRun { start, end: day - 1 } },
            StreakRunEdit::Insert(StreakRun { start: day + 1, end }),
        ],
    }
}

/// The current streak from the latest run that starts on or before `today`: its days up to
/// today if it reaches today or yesterday, else 0.
pub fn current_streak(latest_run_starting_by_today: Option<StreakRun>, today: DayNumber) -> u32 {
    match latest_run_starting_by_today {
        Some(run) if run.start <= today && run.end >= today - 1 => (run.end.min(today) - run.start + 1) as u32,
        _ => 0,
    }
}

/// Both streaks straight from a list of active days (any order, duplicates allowed): the
/// reference the maintained runs are checked against.
pub fn streaks_from_days(days: &[DayNumber], today: DayNumber) -> StreakLengths {
    let mut days = days.to_vec();
    days.sort_unstable();
    days.dedup();
    let mut runs: Vec<StreakRun> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some(run) if run.end + 1 == day => run.end = day,
            _ => runs.push(StreakRun::day(day)),
        }
    }
    let longest = runs.iter().map(StreakRun::days).max().unwrap_or(0);
    let latest_by_today = runs.iter().rev().find(|run| run.start <= today).copied();
    StreakLengths { current: current_streak(latest_by_today, today), longest }
}

/// A user's current and longest streak, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreakLengths {
    pub current: u32,
    pub longest: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(runs: &mut Vec<StreakRun>, edits: Vec<StreakRunEdit>) {
        for edit in edits {
            match edit {
                StreakRunEdit::Insert(run) => runs.push(run),
                StreakRunEdit::Delete(run) => runs.retain(|r| *r != run),
                StreakRunEdit::Replace { old, new } => {
                    let slot = runs.iter_mut().find(|r| **r == old).expect("replaced run exists");
                    *slot = new;
                }
            }
        }
        runs.sort();
    }

    /// Maintains runs through `add_day`/`remove_day` the way the repository does.
    fn maintain(runs: &mut Vec<StreakRun>, day: DayNumber, active: bool) {
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
            let day = DayNumber::new((seed >> 33) as i32 % 60);
            let now_active = !active.contains(&day);
            if now_active {
                active.insert(day);
            } else {
                active.remove(&day);
            }
            maintain(&mut runs, day, now_active);
            let days: Vec<DayNumber> = active.iter().copied().collect();
            let mut expected: Vec<StreakRun> = Vec::new();
            for d in days {
                match expected.last_mut() {
                    Some(r) if r.end + 1 == d => r.end = d,
                    _ => expected.push(StreakRun::day(d)),
                }
            }
            assert_eq!(runs, expected);
        }
    }

    #[test]
    fn current_streak_counts_runs_reaching_today_or_yesterday() {
        let today = DayNumber::new(100);
        let streaks_from_days = |days: &[i32], today| {
            let days: Vec<DayNumber> = days.iter().copied().map(DayNumber::new).collect();
            let lengths = super::streaks_from_days(&days, today);
            (lengths.current, lengths.longest)
        };
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
        assert_eq!(LocalDate::new(EPOCH).day_number(), DayNumber::new(0));
    }

    #[test]
    fn a_week_starts_on_the_monday_before_or_on_the_day() {
        let day = |raw: &str| LocalDate::new(NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()).day_number();
        for (date, monday) in [
            ("2026-03-01", "2026-02-23"), // a Sunday
            ("2026-03-02", "2026-03-02"), // a Monday
            ("2026-03-04", "2026-03-02"),
            ("1970-01-01", "1969-12-29"), // the epoch, a Thursday
            ("1969-12-31", "1969-12-29"), // before it, where % would round the wrong way
            ("1900-01-07", "1900-01-01"),
        ] {
            assert_eq!(day(date).week_start(), day(monday), "{date}");
        }
    }
}
