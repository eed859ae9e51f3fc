//! Users and the values a user is made of.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::UserId;

/// A login name: 3–32 characters of `[a-z0-9_]`.
///
/// Accepted case-insensitively and always stored lower-case, so `Alice` and `alice` name the
/// same user: the database's unique index can then be a plain one on the stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("username must be 3 to 32 characters long")]
    Length,
    #[error("username may contain only letters a-z, digits and underscores")]
    Characters,
}

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let lowered = raw.to_ascii_lowercase();
        if !lowered.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(UsernameError::Characters);
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&lowered.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `c` may not appear in text shown to other people: a control character, or a
/// bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which would
/// let a name or title reorder the text around it ("Trojan Source").
pub fn is_forbidden_in_text(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The name shown to other people: 1–64 characters after trimming, no control characters and
/// no bidirectional overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisplayNameError {
    #[error("display_name must be 1 to 64 characters long")]
    Length,
    #[error("display_name must not contain control characters or bidirectional overrides")]
    Control,
}

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DisplayNameError> {
        // Counted before trimming too, so the limit a client reads in the API document is the
        // limit on what it sends.
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::Length);
        }
        // Checked before trimming: trimming would quietly drop a trailing tab or vertical tab
        // that the API document (and the web form) refuse anywhere in the name.
        if raw.chars().any(is_forbidden_in_text) {
            return Err(DisplayNameError::Control);
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DisplayNameError::Length);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A user who gives no display name is shown by their username.
    pub fn from_username(username: &Username) -> Self {
        Self(username.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plain-text password on its way to the hasher: 8–128 characters.
///
/// Deliberately not `Serialize` and with a redacting `Debug`, so it can never end up in a log
/// line or a response by accident.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be 8 to 128 characters long")]
    Length,
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(PasswordError::Length);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An IANA time zone such as `Europe/Paris`; it decides what "today" means for a user's streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("timezone must be an IANA time zone name such as Europe/Paris")]
pub struct TimeZoneError;

impl TimeZone {
    pub fn parse(raw: &str) -> Result<Self, TimeZoneError> {
        raw.parse::<chrono_tz::Tz>().map(Self).map_err(|_| TimeZoneError)
    }

    pub fn utc() -> Self {
        Self(chrono_tz::UTC)
    }

    /// Every name `parse` accepts, for the API document.
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    /// The calendar date it is in this zone at `now`.
    pub fn today(&self, now: DateTime<Utc>) -> chrono::NaiveDate {
        now.with_timezone(&self.0).date_naive()
    }

    /// A wall-clock time in this zone as an instant with its offset (what a form's
    /// date-time field and time-zone choice mean). An ambiguous time (the hour repeated when
    /// clocks go back) is the earlier; a time skipped by a DST jump does not exist: `None`.
    pub fn resolve_local(&self, local: chrono::NaiveDateTime) -> Option<DateTime<chrono::FixedOffset>> {
        use chrono::TimeZone as _;
        self.0.from_local_datetime(&local).earliest().map(|at| at.fixed_offset())
    }

    /// The instant the local date next changes after `now`. Where a DST jump skips local
    /// midnight (e.g. America/Santiago), the first local time of the new day that exists.
    pub fn next_midnight_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::TimeZone as _;
        let tomorrow = self.today(now) + chrono::Days::new(1);
        let midnight = tomorrow.and_time(chrono::NaiveTime::MIN);
        (0..=24)
            .map(|step| midnight + chrono::TimeDelta::minutes(15 * step))
            .find_map(|local| self.0.from_local_datetime(&local).earliest())
            .map_or(now + chrono::TimeDelta::hours(24), |at| at.with_timezone(&Utc))
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A registered user as the rest of the system sees it (no credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    pub timezone: TimeZone,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_case_insensitive_and_stored_lower_case() {
        assert_eq!(Username::parse("Alice").unwrap(), Username::parse("alice").unwrap());
        assert_eq!(Username::parse("Alice_99").unwrap().as_str(), "alice_99");
    }

    #[test]
    fn usernames_outside_the_alphabet_or_length_are_rejected() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("bob smith"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("robert'); drop"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("émile"), Err(UsernameError::Characters));
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn passwords_are_counted_in_characters_and_never_printed() {
        assert_eq!(Password::parse("short").unwrap_err(), PasswordError::Length);
        assert!(Password::parse("ünïcødé!").is_ok());
        assert_eq!(Password::parse(&"x".repeat(129)).unwrap_err(), PasswordError::Length);
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn time_zones_must_be_iana_names() {
        assert_eq!(TimeZone::parse("Europe/Paris").unwrap().name(), "Europe/Paris");
        assert_eq!(TimeZone::parse("Mars/Olympus"), Err(TimeZoneError));
        assert_eq!(TimeZone::parse(""), Err(TimeZoneError));
    }

    #[test]
    fn the_next_midnight_is_local_and_survives_dst_gaps() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let paris = TimeZone::parse("Europe/Paris").unwrap();
        assert_eq!(paris.next_midnight_after(at("2026-03-01T22:30:00Z")), at("2026-03-01T23:00:00Z"));
        assert_eq!(paris.next_midnight_after(at("2026-03-01T23:30:00Z")), at("2026-03-02T23:00:00Z"));
        let tokyo = TimeZone::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.next_midnight_after(at("2026-03-01T10:00:00Z")), at("2026-03-01T15:00:00Z"));
        // Chile springs forward at local midnight: 2026-09-06 00:00 does not exist there.
        let santiago = TimeZone::parse("America/Santiago").unwrap();
        let next = santiago.next_midnight_after(at("2026-09-05T12:00:00Z"));
        assert_eq!(next.with_timezone(&santiago.tz()).date_naive().to_string(), "2026-09-06");
        assert!(next > at("2026-09-05T12:00:00Z"));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann ").unwrap().as_str(), "Ann");
        assert_eq!(DisplayName::parse("   "), Err(DisplayNameError::Length));
        assert_eq!(DisplayName::parse("a\u{0007}b"), Err(DisplayNameError::Control));
        // Found by the API fuzzer: a control character at either end is refused, not trimmed
        // away, as the API document says.
        assert_eq!(DisplayName::parse("2\u{000B}"), Err(DisplayNameError::Control));
        assert_eq!(DisplayName::parse("\tAnn"), Err(DisplayNameError::Control));
        // Blank but not control: trimmed like a space.
        assert_eq!(DisplayName::parse("\u{3000}Ann\u{00A0}").unwrap().as_str(), "Ann");
        assert_eq!(DisplayName::parse("\u{2028}\u{205F}"), Err(DisplayNameError::Length));
    }

    #[test]
    fn bidirectional_overrides_and_isolates_are_refused_and_marks_are_not() {
        for c in
            ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}']
        {
            assert_eq!(DisplayName::parse(&format!("evil{c}gnp.exe")), Err(DisplayNameError::Control), "{c:?}");
        }
        assert!(
            !is_forbidden_in_text('\u{2029}') && !is_forbidden_in_text('\u{2065}') && !is_forbidden_in_text('\u{202F}')
        );
        assert!(DisplayName::parse("\u{200F}שלום").is_ok(), "a right-to-left mark is ordinary text");
        assert!(crate::Title::parse("Morning run\u{2067}").is_err());
        assert!(crate::Title::parse("Morning\nrun\u{200F}").is_ok());
    }
}
