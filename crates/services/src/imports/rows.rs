//! What a row of Strava's `activities.csv` says about its activity: pure, so the pipeline
//! runs it anywhere and the tests check every field without a database.

use chrono::{DateTime, Utc};
use stride_domain::{
    ActivityDraft, Description, Distance, MovingTime, Problem, Sport, StartedAt, Visibility, is_forbidden_in_text,
};
use stride_tracks::{StravaRow, strava_sport};

use super::recorded::title;

/// The sport the row's `Activity Type` maps to.
pub(crate) fn row_sport(row: &StravaRow) -> Sport {
    strava_sport(&row.activity_type).parse().unwrap_or(Sport::Other)
}

/// The row's description, cleaned as titles are (control and bidirectional-override
/// characters removed, newlines and tabs kept), cut to the limit; `None` when empty.
pub(crate) fn row_description(row: &StravaRow) -> Option<Description> {
    let cleaned: String = row
        .description
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !is_forbidden_in_text(c))
        .take(Description::MAX_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| Description::parse(cleaned).ok()).flatten()
}

/// A track's draft with what the row says instead: its sport, title and description.
pub(crate) fn apply_row(draft: &mut ActivityDraft, row: &StravaRow) {
    draft.sport = row_sport(row);
    draft.title = title(Some(&row.name), draft.sport, &draft.started_at);
    draft.description = row_description(row);
}

/// The manual activity of a row without a file: started at `Activity Date` (UTC, written with
/// offset +00:00 since the row names no zone), lasting the first `Elapsed Time`, as long as
/// the row's distance in metres.
pub(crate) fn manual_draft(
    row: &StravaRow,
    visibility: Visibility,
    now: DateTime<Utc>,
) -> Result<ActivityDraft, Problem> {
    let invalid = |message: String| Problem::new("invalid_row", format!("activities.csv row {}: {message}", row.row));
    let at = row.started_at.ok_or_else(|| invalid(format!("Activity Date {:?} is not a date", row.date_text)))?;
    let started_at = StartedAt::new(at.fixed_offset());
    started_at.check_not_after(now).map_err(|_| invalid("Activity Date is in the future".into()))?;
    if chrono::Datelike::year(&at) < StartedAt::EARLIEST_YEAR {
        return Err(invalid("Activity Date is before 1900".into()));
    }
    let seconds = row.elapsed_s.ok_or_else(|| invalid("Elapsed Time is missing".into()))?.round() as i64;
    let duration = MovingTime::from_seconds(seconds)
        .map_err(|_| invalid(format!("Elapsed Time {seconds} s is not from 1 s to 30 days")))?;
    let distance = Distance::from_metres(row.distance_m.unwrap_or(0.0))
        .map_err(|_| invalid("Distance is over 10,000 km".into()))?;
    let sport = row_sport(row);
    Ok(ActivityDraft {
        sport,
        title: title(Some(&row.name), sport, &started_at),
        started_at,
        duration,
        distance,
        visibility,
        start_latlng: None,
        description: row_description(row),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> StravaRow {
        StravaRow {
            row: 4,
            activity_id: "99".into(),
            started_at: Some("2026-03-01T07:30:00Z".parse().unwrap()),
            date_text: "Mar 1, 2026, 7:30:00 AM".into(),
            name: "Lunch \u{202e}swim".into(),
            activity_type: "Swim".into(),
            description: "Pool,\n50 m\u{7}".into(),
            elapsed_s: Some(1800.4),
            distance_m: Some(1500.0),
            filename: String::new(),
            media: Vec::new(),
        }
    }

    #[test]
    fn a_row_without_a_file_is_a_manual_activity_at_utc() {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let draft = manual_draft(&row(), Visibility::Public, now).unwrap();
        assert_eq!(draft.sport, Sport::Swim);
        assert_eq!(draft.title.as_str(), "Lunch swim");
        assert_eq!(draft.description.as_ref().map(Description::as_str), Some("Pool,\n50 m"));
        assert_eq!(draft.started_at.as_datetime().to_rfc3339(), "2026-03-01T07:30:00+00:00");
        assert_eq!(draft.duration.seconds(), 1800);
        assert_eq!(draft.distance.metres(), 1500.0);
        assert_eq!(draft.visibility, Visibility::Public);
    }

    #[test]
    fn rows_that_cannot_be_activities_say_why() {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        for (broken, needle) in [
            (StravaRow { started_at: None, ..row() }, "not a date"),
            (StravaRow { elapsed_s: None, ..row() }, "Elapsed Time is missing"),
            (StravaRow { elapsed_s: Some(0.2), ..row() }, "from 1 s"),
            (StravaRow { distance_m: Some(2e7), ..row() }, "10,000 km"),
            (StravaRow { started_at: Some("2026-07-01T00:00:00Z".parse().unwrap()), ..row() }, "future"),
        ] {
            let problem = manual_draft(&broken, Visibility::Friends, now).unwrap_err();
            assert_eq!(problem.code, "invalid_row");
            assert!(problem.message.contains(needle) && problem.message.contains("row 4"), "{problem:?}");
        }
    }

    #[test]
    fn an_empty_name_falls_back_and_an_empty_description_is_none() {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let quiet =
            StravaRow { name: " ".into(), description: "\u{7}".into(), activity_type: "Kayaking".into(), ..row() };
        let draft = manual_draft(&quiet, Visibility::Private, now).unwrap();
        assert_eq!(draft.title.as_str(), "Other on 2026-03-01");
        assert_eq!(draft.description, None);
    }
}
