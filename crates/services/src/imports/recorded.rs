//! What an activity made from a file says: its sport, title, start (in the time zone where it
//! was recorded), and the summary the database keeps. Pure: the import job calls it on the
//! CPU pool with everything it needs.

use chrono::{DateTime, FixedOffset, TimeZone as _, Utc};
use stride_domain::{
    ActivityDraft, BestEffort, Distance, LatLng, MovingTime, Source, SplitSummary, Sport, StartedAt, Title,
    TrackSummary, Visibility, is_forbidden_in_text,
};
use stride_tracks::{Format, Route, Streams, Summary, Track, TrackError, local_offset_at, route, sport_name};

/// A file read and measured, ready to become an activity.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub draft: ActivityDraft,
    pub source: Source,
    pub summary: TrackSummary,
    /// The encoded points, for the blob store.
    pub points: Vec<u8>,
    /// Its best efforts, stored with the activity.
    pub efforts: Vec<BestEffort>,
}

/// What the import knows that the file may not say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub sport: Option<Sport>,
    pub visibility: Visibility,
    /// The user's time zone, for a track without positions.
    pub home: chrono_tz::Tz,
    pub now: DateTime<Utc>,
}

pub(crate) fn record(track: Track, defaults: Defaults) -> Result<Recorded, TrackError> {
    // The streams first: their cumulative distance (the geodesics, most of the work) is the
    // summary's too.
    let streams = Streams::from_points(track.points);
    let summary = Summary::compute_with(&streams.points, &streams.distance)?;
    let sport = match &track.sport {
        Some(named) => sport_name(named).parse().unwrap_or(Sport::Other),
        None => defaults.sport.unwrap_or(Sport::Other),
    };
    let started_at = start(&summary, defaults.home)?;
    started_at
        .check_not_after(defaults.now)
        .map_err(|_| TrackError::Invalid("the track starts more than a day in the future".into()))?;
    let title = title(track.name.as_deref(), sport, &started_at);
    let duration = MovingTime::from_seconds(summary.moving_s)
        .map_err(|_| TrackError::TooLarge("the moving time is over 30 days".into()))?;
    let distance = Distance::from_metres(summary.distance_m)
        .map_err(|_| TrackError::Invalid("the distance is negative or over 10,000 km".into()))?;
    let start_latlng = summary.first_position.and_then(|(lat, lon)| LatLng::new(lat, lon).ok());
    let route = route(&streams.positions());
    let points = stride_tracks::encode_points(&streams);
    let efforts = crate::records::efforts_of_track(&streams.points, &streams.distance);
    Ok(Recorded {
        draft: ActivityDraft {
            sport,
            title,
            started_at,
            duration,
            distance,
            visibility: defaults.visibility,
            start_latlng,
            description: None,
        },
        source: match track.format {
            Some(Format::Tcx) => Source::Tcx,
            Some(Format::Fit) => Source::Fit,
            _ => Source::Gpx,
        },
        summary: track_summary(&summary, route.as_ref()),
        points,
        efforts,
    })
}

/// The first timed point, in the offset of the time zone at the first position (else home).
fn start(summary: &Summary, home: chrono_tz::Tz) -> Result<StartedAt, TrackError> {
    let utc = DateTime::<Utc>::from_timestamp_nanos(summary.started_at_ns);
    let offset = summary
        .first_position
        .and_then(|position| local_offset_at(position, summary.started_at_ns))
        .unwrap_or_else(|| chrono::Offset::fix(&home.offset_from_utc_datetime(&utc.naive_utc())).local_minus_utc());
    let offset =
        FixedOffset::east_opt(offset).ok_or_else(|| TrackError::Invalid("no time zone for the start".into()))?;
    if chrono::Datelike::year(&utc) < StartedAt::EARLIEST_YEAR {
        return Err(TrackError::Invalid("the track starts before 1900".into()));
    }
    Ok(StartedAt::new(utc.with_timezone(&offset)))
}

/// The file's name for it, cleaned (control and bidirectional-override characters removed,
/// at most 200 characters), else "<Sport> on <local date>".
pub(crate) fn title(named: Option<&str>, sport: Sport, started_at: &StartedAt) -> Title {
    let cleaned: String =
        named.unwrap_or_default().chars().filter(|&c| !is_forbidden_in_text(c)).take(Title::MAX_CHARS).collect();
    let cleaned = cleaned.trim();
    if !cleaned.is_empty()
        && let Ok(title) = Title::parse(cleaned)
    {
        return title;
    }
    let sport = sport.as_str();
    let mut label = sport[..1].to_ascii_uppercase();
    label.push_str(&sport[1..]);
    Title::parse(&format!("{label} on {}", started_at.local_date().date())).unwrap_or_default()
}

fn track_summary(summary: &Summary, route: Option<&Route>) -> TrackSummary {
    TrackSummary {
        points: summary.points,
        elapsed_s: summary.elapsed_s,
        moving_s: summary.moving_s,
        distance_m: summary.distance_m,
        elevation_gain_m: summary.elevation_gain_m,
        elevation_loss_m: summary.elevation_loss_m,
        avg_hr: summary.avg_hr,
        max_hr: summary.max_hr,
        polyline: route.map(|r| r.polyline.clone()),
        polyline_tolerance_m: route.map(|r| r.tolerance_m),
        bbox: route.map(|r| r.bbox),
        splits: summary
            .splits
            .iter()
            .map(|s| SplitSummary { km: s.km, distance_m: s.distance_m, elapsed_s: s.elapsed_s })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> StartedAt {
        StartedAt::parse(rfc3339).unwrap()
    }

    #[test]
    fn titles_are_cleaned_cut_and_fall_back_to_sport_and_local_date() {
        let start = at("2026-06-02T06:30:00+09:00");
        assert_eq!(title(Some("Morning\u{202e}run\u{7}"), Sport::Run, &start).as_str(), "Morningrun");
        assert_eq!(title(Some(&"x".repeat(250)), Sport::Run, &start).as_str().chars().count(), 200);
        assert_eq!(title(None, Sport::Run, &start).as_str(), "Run on 2026-06-02");
        assert_eq!(title(Some(" \u{202e} "), Sport::Hike, &start).as_str(), "Hike on 2026-06-02");
    }
}
