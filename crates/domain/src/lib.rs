//! The bottom layer of Stride: the vocabulary every other crate speaks.
//!
//! Everything here is pure — no I/O, no async runtime, no clock reads (callers pass `now`).
//! Values are *parsed* at the edge (`Username::parse`, `Distance::from_metres`, …) and are
//! impossible to construct in an invalid state afterwards, so the layers above never re-check
//! them. Rules that must be decided in exactly one place (who may see an activity, how a local
//! date is derived, how a page cursor is encoded) live here too.
//!
//! Architecture Invariant: this crate depends on no other Stride crate and on nothing that
//! performs I/O.

mod activity;
mod cursor;
mod ids;
mod import;
mod jobs;
mod limits;
mod photo;
mod records;
mod social;
mod stats;
mod track;
mod user;
mod visibility;
mod weather;

pub use activity::{
    Activity, ActivityDraft, ActivityPatch, Distance, DistanceError, LocalDate, MovingTime, MovingTimeError, Sport,
    SportError, StartedAt, StartedAtError, Title, TitleError,
};
pub use cursor::{ActivityCursor, Cursor, CursorError, ListCursor, Page};
pub use ids::{ActivityId, FriendRequestId, IdError, ImportId, JobId, PhotoId, UserId, ZoneId};
pub use import::{Import, ImportItem, ImportState, ItemState, Problem, import_archive_blob, import_item_blob};
pub use jobs::{Job, JobState, JobStateError, Lease, NewJob};
pub use limits::{Admission, RateLimit};
pub use photo::{ImageFormat, Photo, PhotoKind, Rendition, blob_name, minted_at_ms, next_position, photo_of_blob};
pub use records::{BestEffort, Extreme, Period, PeriodTotals, RECORD_PLACES, RankedEffort};
pub use social::{
    BlockedUser, Connection, FriendRequest, MergedPage, Profile, RequestDirection, RequestOutcome, RequestRefusal, Tie,
    cursor_after, decide_request, feed_order, merge_newest_first,
};
pub use stats::{
    DayNumber, StatsScope, StreakLengths, StreakRun, StreakRunEdit, add_day, current_streak, remove_day,
    streaks_from_days,
};
pub use track::{
    Description, DescriptionError, PrivacyZone, Source, SourceError, SplitSummary, TrackSummary, track_points_blob,
};
pub use user::{
    DisplayName, DisplayNameError, Password, PasswordError, TimeZone, TimeZoneError, User, Username, UsernameError,
    is_forbidden_in_text,
};
pub use visibility::{Relationship, Visibility, VisibilityError, can_view};
pub use weather::{
    FALLBACK_WINDOW, LatLng, LatLngError, Observation, Weather, WeatherCell, WeatherSource, WeatherStatus,
    WeatherStatusError, WeatherTarget, nearest_observation, weather_days, weather_hour,
};
