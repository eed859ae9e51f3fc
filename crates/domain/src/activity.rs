//! Activities and the measured values they carry.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::weather::{LatLng, Weather, WeatherStatus, WeatherTarget};
use crate::{ActivityId, Description, Source, TrackSummary, UserId, Visibility};

/// What kind of activity it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sport {
    Run,
    Ride,
    Swim,
    Walk,
    Hike,
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sport must be one of run, ride, swim, walk, hike, other")]
pub struct SportError;

impl Sport {
    pub const ALL: [Sport; 6] = [Sport::Run, Sport::Ride, Sport::Swim, Sport::Walk, Sport::Hike, Sport::Other];

    pub fn as_str(&self) -> &'static str {
        match self {
            Sport::Run => "run",
            Sport::Ride => "ride",
            Sport::Swim => "swim",
            Sport::Walk => "walk",
            Sport::Hike => "hike",
            Sport::Other => "other",
        }
    }
}

impl FromStr for Sport {
    type Err = SportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sport::ALL.into_iter().find(|sport| sport.as_str() == s).ok_or(SportError)
    }
}

impl fmt::Display for Sport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A distance in metres: finite and between 0 and 10,000 km.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Distance(f64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("distance_m must be a finite number from 0 to 10000000")]
pub struct DistanceError;

impl Distance {
    pub const MAX_METRES: f64 = 10_000_000.0;

    pub fn from_metres(metres: f64) -> Result<Self, DistanceError> {
        if metres.is_finite() && (0.0..=Self::MAX_METRES).contains(&metres) {
            // Normalise -0.0 so that equality and storage never see two zeros.
            Ok(Self(metres + 0.0))
        } else {
            Err(DistanceError)
        }
    }

    pub fn metres(&self) -> f64 {
        self.0
    }
}

/// A moving time in whole seconds: at least 1 s, at most 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MovingTime(u32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("duration_s must be a whole number of seconds from 1 to 2592000")]
pub struct MovingTimeError;

impl MovingTime {
    pub const MAX_SECONDS: i64 = 2_592_000;

    pub fn from_seconds(seconds: i64) -> Result<Self, MovingTimeError> {
        if (1..=Self::MAX_SECONDS).contains(&seconds) { Ok(Self(seconds as u32)) } else { Err(MovingTimeError) }
    }

    pub fn seconds(&self) -> u32 {
        self.0
    }
}

/// When an activity started, with the UTC offset the client reported.
///
/// The offset is kept because it fixes the activity's [`LocalDate`] for good: a user who moves
/// from Paris to Tokyo keeps their Paris run on the day they ran it. Sub-microsecond precision
/// is dropped on parse so that what is stored round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StartedAt(DateTime<FixedOffset>);

/// Why a start time was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartedAtError {
    #[error("must be an RFC 3339 date-time with offset, e.g. 2026-03-01T07:30:00+01:00")]
    Malformed,
    /// chrono accepts second 60 and folds it into the next second on storage, which moves the
    /// activity to another local date than the one it was created on; UTC leap seconds are
    /// never what a fitness tracker meant.
    #[error("second 60 (a leap second) is not accepted")]
    LeapSecond,
    #[error("must be from {} on", StartedAt::EARLIEST_YEAR)]
    TooEarly,
    #[error("must not be more than a day in the future")]
    InTheFuture,
}

impl StartedAt {
    /// The earliest year accepted: nobody logs an activity from before it.
    pub const EARLIEST_YEAR: i32 = 1900;

    pub fn new(at: DateTime<FixedOffset>) -> Self {
        Self(at.trunc_subsecs(6))
    }

    /// Parses what a client sends: RFC 3339 with an offset, no leap second, from 1900 on.
    /// (The upper bound needs "now"; see [`StartedAt::check_not_after`].)
    pub fn parse(raw: &str) -> Result<Self, StartedAtError> {
        let at = DateTime::parse_from_rfc3339(raw).map_err(|_| StartedAtError::Malformed)?;
        if at.nanosecond() >= 1_000_000_000 {
            return Err(StartedAtError::LeapSecond);
        }
        if at.year() < Self::EARLIEST_YEAR {
            return Err(StartedAtError::TooEarly);
        }
        Ok(Self::new(at))
    }

    /// Refuses a start more than a day after `now` (a day covers every UTC offset).
    pub fn check_not_after(&self, now: DateTime<Utc>) -> Result<(), StartedAtError> {
        if self.0 > now + chrono::TimeDelta::days(1) { Err(StartedAtError::InTheFuture) } else { Ok(()) }
    }

    /// Rebuilds a stored value from its UTC microseconds and offset; `None` if out of range.
    pub fn from_parts(utc_micros: i64, offset_seconds: i32) -> Option<Self> {
        let offset = FixedOffset::east_opt(offset_seconds)?;
        let utc = DateTime::<Utc>::from_timestamp_micros(utc_micros)?;
        Some(Self(utc.with_timezone(&offset)))
    }

    pub fn utc_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    pub fn offset_seconds(&self) -> i32 {
        self.0.offset().local_minus_utc()
    }

    pub fn local_date(&self) -> LocalDate {
        LocalDate(self.0.date_naive())
    }

    pub fn as_datetime(&self) -> DateTime<FixedOffset> {
        self.0
    }
}

/// The calendar date of an activity in the offset it was submitted with; streaks count these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LocalDate(NaiveDate);

impl LocalDate {
    pub fn new(date: NaiveDate) -> Self {
        Self(date)
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

/// A free-text title of at most 200 characters, stored verbatim (emoji, quotes and all).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Title(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "title must be at most 200 characters and contain no control characters other than newlines, and no bidirectional overrides"
)]
pub struct TitleError;

impl Title {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TitleError> {
        let too_long = raw.chars().count() > Self::MAX_CHARS;
        let has_control = raw.chars().any(|c| crate::user::is_forbidden_in_text(c) && c != '\n' && c != '\t');
        if too_long || has_control {
            return Err(TitleError);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything a user supplies to create an activity, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDraft {
    pub sport: Sport,
    pub title: Title,
    pub started_at: StartedAt,
    pub duration: MovingTime,
    pub distance: Distance,
    pub visibility: Visibility,
    pub start_latlng: Option<LatLng>,
    pub description: Option<Description>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityPatch {
    pub sport: Option<Sport>,
    pub title: Option<Title>,
    pub started_at: Option<StartedAt>,
    pub duration: Option<MovingTime>,
    pub distance: Option<Distance>,
    pub visibility: Option<Visibility>,
    /// `Some(None)` clears the start point (and with it the weather).
    pub start_latlng: Option<Option<LatLng>>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
}

impl ActivityPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the patch changes what a track decides (its start, moving time and distance).
    pub fn touches_track(&self) -> bool {
        self.started_at.is_some() || self.duration.is_some() || self.distance.is_some()
    }
}

/// A stored activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    pub id: ActivityId,
    pub user_id: UserId,
    pub sport: Sport,
    pub title: Title,
    pub started_at: StartedAt,
    pub duration: MovingTime,
    pub distance: Distance,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How many photos are attached; kept on the row by the photo writes of the same
    /// transaction, so a list shows it without a query per item.
    pub photo_count: u32,
    /// Where it started; shown to the owner only (a start is often a home).
    pub start_latlng: Option<LatLng>,
    pub weather_status: WeatherStatus,
    pub weather: Option<Weather>,
    pub description: Option<Description>,
    pub source: Source,
    /// The recorded track's summary; `None` for an activity typed in by hand.
    pub track: Option<TrackSummary>,
}

impl Activity {
    pub fn create(id: ActivityId, owner: UserId, draft: ActivityDraft, now: DateTime<Utc>) -> Self {
        let now = now.trunc_subsecs(6);
        Self {
            id,
            user_id: owner,
            sport: draft.sport,
            title: draft.title,
            started_at: draft.started_at,
            duration: draft.duration,
            distance: draft.distance,
            visibility: draft.visibility,
            created_at: now,
            updated_at: now,
            photo_count: 0,
            start_latlng: draft.start_latlng,
            weather_status: WeatherStatus::None,
            weather: None,
            description: draft.description,
            source: Source::Manual,
            track: None,
        }
    }

    /// An activity made from a recorded file: its start, moving time and distance are the
    /// track's, and stay so (a patch may not change them).
    pub fn recorded(
        id: ActivityId,
        owner: UserId,
        draft: ActivityDraft,
        source: Source,
        track: TrackSummary,
        now: DateTime<Utc>,
    ) -> Self {
        Self { source, track: Some(track), ..Self::create(id, owner, draft, now) }
    }

    /// What a `weather.enrich` job would look up for this activity, if it has a start point.
    pub fn weather_target(&self) -> Option<WeatherTarget> {
        self.start_latlng.map(|start| WeatherTarget { start, started_at_utc_micros: self.started_at.utc_micros() })
    }

    /// Marks the weather as on its way, if there is a start point to look it up for; the
    /// caller enqueues the job for the returned target in the same transaction.
    pub fn await_weather(&mut self) -> Option<WeatherTarget> {
        let target = self.weather_target()?;
        self.weather_status = WeatherStatus::Pending;
        Some(target)
    }

    pub fn local_date(&self) -> LocalDate {
        self.started_at.local_date()
    }

    /// Applies a patch; the local date follows `started_at` and nothing else. When the weather's
    /// target moves (a new start point or time, or none) the old weather is cleared; whether to
    /// look it up again is the write path's decision, which compares the targets before and
    /// after any write ([`Activity::await_weather`]).
    pub fn apply(&mut self, patch: ActivityPatch, now: DateTime<Utc>) {
        let target_before = self.weather_target();
        let ActivityPatch { sport, title, started_at, duration, distance, visibility, start_latlng, description } =
            patch;
        if let Some(v) = description {
            self.description = v;
        }
        if let Some(v) = sport {
            self.sport = v;
        }
        if let Some(v) = title {
            self.title = v;
        }
        if let Some(v) = started_at {
            self.started_at = v;
        }
        if let Some(v) = duration {
            self.duration = v;
        }
        if let Some(v) = distance {
            self.distance = v;
        }
        if let Some(v) = visibility {
            self.visibility = v;
        }
        if let Some(v) = start_latlng {
            self.start_latlng = v;
        }
        self.updated_at = now.trunc_subsecs(6);
        if self.weather_target() != target_before {
            self.weather = None;
            self.weather_status = WeatherStatus::None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_second_is_refused_and_an_ordinary_last_second_is_not() {
        assert_eq!(StartedAt::parse("2026-03-01T23:59:60+01:00"), Err(StartedAtError::LeapSecond));
        assert_eq!(StartedAt::parse("2016-12-31T23:59:60Z"), Err(StartedAtError::LeapSecond));
        let last = StartedAt::parse("2026-03-01T23:59:59.999999+01:00").unwrap();
        assert_eq!(last.local_date().date(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    }

    #[test]
    fn starts_are_bounded_to_a_sane_range() {
        assert_eq!(StartedAt::parse("1899-12-31T23:59:59Z"), Err(StartedAtError::TooEarly));
        assert!(StartedAt::parse("1900-01-01T00:00:00Z").is_ok());
        assert_eq!(StartedAt::parse("yesterday"), Err(StartedAtError::Malformed));
        assert_eq!(StartedAt::parse("2026-03-01T07:00:00"), Err(StartedAtError::Malformed), "no offset");
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc);
        let tomorrow = StartedAt::parse("2026-03-02T11:00:00Z").unwrap();
        let later = StartedAt::parse("2026-03-02T13:00:00Z").unwrap();
        assert_eq!(tomorrow.check_not_after(now), Ok(()));
        assert_eq!(later.check_not_after(now), Err(StartedAtError::InTheFuture));
    }

    fn at(rfc3339: &str) -> StartedAt {
        StartedAt::new(DateTime::parse_from_rfc3339(rfc3339).unwrap())
    }

    #[test]
    fn local_date_is_the_date_in_the_submitted_offset() {
        let late_evening_in_seattle = at("2026-03-01T23:30:00-08:00");
        assert_eq!(late_evening_in_seattle.local_date().date().to_string(), "2026-03-01");
        let as_utc = late_evening_in_seattle.as_datetime().with_timezone(&Utc);
        assert_eq!(as_utc.date_naive().to_string(), "2026-03-02");
    }

    #[test]
    fn started_at_round_trips_through_its_stored_parts() {
        let original = at("2026-03-01T23:30:00.123456789+05:45");
        let rebuilt = StartedAt::from_parts(original.utc_micros(), original.offset_seconds()).unwrap();
        assert_eq!(rebuilt, original);
        assert_eq!(rebuilt.as_datetime().to_rfc3339(), "2026-03-01T23:30:00.123456+05:45");
    }

    #[test]
    fn distances_must_be_finite_and_in_range() {
        assert!(Distance::from_metres(f64::NAN).is_err());
        assert!(Distance::from_metres(f64::INFINITY).is_err());
        assert!(Distance::from_metres(-1.0).is_err());
        assert!(Distance::from_metres(10_000_000.5).is_err());
        assert_eq!(Distance::from_metres(-0.0).unwrap().metres().to_bits(), 0.0f64.to_bits());
        assert!(Distance::from_metres(10_000_000.0).is_ok());
    }

    #[test]
    fn durations_are_whole_seconds_from_one_second_to_thirty_days() {
        assert!(MovingTime::from_seconds(0).is_err());
        assert!(MovingTime::from_seconds(2_592_001).is_err());
        assert_eq!(MovingTime::from_seconds(2_592_000).unwrap().seconds(), 2_592_000);
    }

    #[test]
    fn titles_keep_emoji_and_sql_metacharacters_verbatim() {
        let raw = "Robert'); DROP TABLE activities;-- 🏃‍♀️";
        assert_eq!(Title::parse(raw).unwrap().as_str(), raw);
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert!(Title::parse(&"é".repeat(201)).is_err());
        assert!(Title::parse("nul\u{0}byte").is_err());
    }

    #[test]
    fn sports_parse_only_from_their_names() {
        assert_eq!("swim".parse::<Sport>(), Ok(Sport::Swim));
        assert_eq!("Swim".parse::<Sport>(), Err(SportError));
        assert_eq!("skate".parse::<Sport>(), Err(SportError));
    }

    #[test]
    fn moving_an_activity_moves_its_local_date_and_nothing_else_does() {
        let owner = UserId::new();
        let draft = ActivityDraft {
            sport: Sport::Run,
            title: Title::default(),
            started_at: at("2026-03-01T08:00:00+01:00"),
            duration: MovingTime::from_seconds(60).unwrap(),
            distance: Distance::from_metres(100.0).unwrap(),
            visibility: Visibility::Public,
            start_latlng: None,
            description: None,
        };
        let mut activity = Activity::create(ActivityId::new(), owner, draft, Utc::now());
        activity.apply(ActivityPatch { title: Some(Title::parse("x").unwrap()), ..Default::default() }, Utc::now());
        assert_eq!(activity.local_date().date().to_string(), "2026-03-01");
        activity.apply(
            ActivityPatch { started_at: Some(at("2026-03-04T08:00:00+01:00")), ..Default::default() },
            Utc::now(),
        );
        assert_eq!(activity.local_date().date().to_string(), "2026-03-04");
    }
}
