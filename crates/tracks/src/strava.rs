//! Strava's `activities.csv` (from "Download your data"): one row per activity, with a header
//! in English whose names repeat (`Elapsed Time`, `Distance`, `Max Heart Rate`… appear once in
//! the summary columns and again among the detailed ones) and fields quoted when they hold
//! commas or newlines. Only the columns Stride uses are read; the rest are ignored.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The columns a file must have to be read as Strava's export.
const REQUIRED: [&str; 4] = ["Activity ID", "Activity Date", "Activity Type", "Filename"];

/// One row, as Strava wrote it (text fields untrimmed of meaning, numbers parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct StravaRow {
    /// The row's position among the rows, from 1.
    pub row: usize,
    /// Strava's id of the activity: how a row without a file is recognised the second time.
    pub activity_id: String,
    /// `Activity Date`, which Strava writes in UTC; `None` when it cannot be read.
    pub started_at: Option<DateTime<Utc>>,
    pub date_text: String,
    pub name: String,
    /// `Activity Type` as written (`Run`, `Trail Run`, `E-Bike Ride`…); see [`strava_sport`].
    pub activity_type: String,
    pub description: String,
    /// The first `Elapsed Time` column, seconds.
    pub elapsed_s: Option<f64>,
    /// Metres: the last `Distance` column when the header repeats it (Strava's detailed
    /// column, metres), else the only one × 1000 (kilometres).
    pub distance_m: Option<f64>,
    /// `Filename`, relative to the CSV's folder (`activities/123.fit.gz`); empty for none.
    pub filename: String,
    /// `Media`, split at `|` (`media/….jpg`), relative to the CSV's folder.
    pub media: Vec<String>,
}

/// Why a CSV is not Strava's export, or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StravaError {
    #[error("activities.csv lacks Strava's column {0:?}")]
    NotStrava(&'static str),
    #[error("activities.csv cannot be read: {0}")]
    Malformed(String),
}

/// Reads every row of `activities.csv`, in file order.
pub fn read_activities_csv(bytes: &[u8]) -> Result<Vec<StravaRow>, StravaError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().map_err(|e| StravaError::Malformed(e.to_string()))?.clone();
    let first = |name: &str| header.iter().position(|h| h.trim() == name);
    let last = |name: &str| header.iter().enumerate().filter(|(_, h)| h.trim() == name).last().map(|(at, _)| at);
    for name in REQUIRED {
        first(name).ok_or(StravaError::NotStrava(name))?;
    }
    let column = |name| first(name).unwrap_or(usize::MAX);
    let (id, date, kind, file) =
        (column("Activity ID"), column("Activity Date"), column("Activity Type"), column("Filename"));
    let (title, description, elapsed, media) =
        (column("Activity Name"), column("Activity Description"), column("Elapsed Time"), column("Media"));
    let distances = header.iter().filter(|h| h.trim() == "Distance").count();
    let (distance, distance_scale) = match distances {
        0 => (usize::MAX, 1.0),
        1 => (column("Distance"), 1000.0),
        _ => (last("Distance").unwrap_or(usize::MAX), 1.0),
    };
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| StravaError::Malformed(e.to_string()))?;
        let field = |at: usize| record.get(at).unwrap_or_default();
        let date_text = field(date).to_owned();
        rows.push(StravaRow {
            row: index + 1,
            activity_id: field(id).trim().to_owned(),
            started_at: parse_date(&date_text),
            date_text,
            name: field(title).to_owned(),
            activity_type: field(kind).trim().to_owned(),
            description: field(description).to_owned(),
            elapsed_s: number(field(elapsed)),
            distance_m: number(field(distance)).map(|d| d * distance_scale),
            filename: field(file).trim().to_owned(),
            media: field(media).split('|').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect(),
        });
    }
    Ok(rows)
}

/// A non-negative finite number, or `None` for an empty or unreadable field.
fn number(text: &str) -> Option<f64> {
    let value: f64 = text.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// `Mar 1, 2026, 7:30:00 AM` (UTC, as Strava writes it); newer exports put a narrow no-break
/// space before the AM/PM.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let text: String = text.trim().chars().map(|c| if matches!(c, '\u{a0}' | '\u{202f}') { ' ' } else { c }).collect();
    NaiveDateTime::parse_from_str(&text, "%b %d, %Y, %I:%M:%S %p").ok().map(|naive| naive.and_utc())
}

/// The product's sport for Strava's `Activity Type`.
pub fn strava_sport(activity_type: &str) -> &'static str {
    match activity_type.trim() {
        "Run" | "Trail Run" | "Virtual Run" => "run",
        "Ride" | "Virtual Ride" | "E-Bike Ride" | "Gravel Ride" | "Mountain Bike Ride" => "ride",
        "Swim" => "swim",
        "Walk" => "walk",
        "Hike" => "hike",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,\
Elapsed Time,Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,\
Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed,Media\n\
101,\"Mar 1, 2026, 7:30:00 AM\",\"Run, easy\",Run,\"two\nlines, with a comma\",1800,5.01,150,,false,,,\
activities/101.fit.gz,,,1800.0,1750.0,5012.3,4.1,media/a.jpg|media/b.jpg\n\
102,\"Dec 24, 2025, 11:05:09 PM\",Commute,E-Bike Ride,,3600,20.5,,,true,,,,,,3600.0,3500.0,20512.0,9.9,\n";

    #[test]
    fn rows_keep_quoted_commas_and_newlines_and_take_the_right_repeated_columns() {
        let rows = read_activities_csv(EXPORT.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        let run = &rows[0];
        assert_eq!(run.row, 1);
        assert_eq!(run.activity_id, "101");
        assert_eq!(run.name, "Run, easy");
        assert_eq!(run.description, "two\nlines, with a comma");
        assert_eq!(run.started_at.unwrap().to_rfc3339(), "2026-03-01T07:30:00+00:00");
        assert_eq!(run.elapsed_s, Some(1800.0));
        // The last `Distance` (metres), not the first (kilometres).
        assert_eq!(run.distance_m, Some(5012.3));
        assert_eq!(run.filename, "activities/101.fit.gz");
        assert_eq!(run.media, ["media/a.jpg", "media/b.jpg"]);
        let ride = &rows[1];
        assert_eq!(ride.started_at.unwrap().to_rfc3339(), "2025-12-24T23:05:09+00:00");
        assert_eq!(ride.filename, "");
        assert!(ride.media.is_empty());
        assert_eq!(strava_sport(&ride.activity_type), "ride");
    }

    #[test]
    fn a_single_distance_column_is_kilometres() {
        let csv = "Activity ID,Activity Date,Activity Type,Elapsed Time,Distance,Filename\n\
                   7,\"Jan 2, 2026, 12:00:00 PM\",Walk,60,1.5,\n";
        let rows = read_activities_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows[0].distance_m, Some(1500.0));
        assert_eq!(rows[0].started_at.unwrap().to_rfc3339(), "2026-01-02T12:00:00+00:00");
    }

    #[test]
    fn dates_take_strava_spacing_and_refuse_anything_else() {
        assert_eq!(parse_date("Mar 1, 2026, 7:30:00\u{202f}AM").unwrap().to_rfc3339(), "2026-03-01T07:30:00+00:00");
        assert_eq!(parse_date("Mar 1, 2026, 12:00:00 AM").unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(parse_date("2026-03-01 07:30"), None);
        assert_eq!(parse_date("Feb 30, 2026, 7:30:00 AM"), None);
    }

    #[test]
    fn other_csvs_are_not_strava_and_bad_numbers_are_none() {
        assert_eq!(read_activities_csv(b"a,b\n1,2\n"), Err(StravaError::NotStrava("Activity ID")));
        assert_eq!(number("-1"), None);
        assert_eq!(number("NaN"), None);
        assert_eq!(number(" 12.5 "), Some(12.5));
    }

    #[test]
    fn types_map_to_sports() {
        for (kind, sport) in [
            ("Run", "run"),
            ("Trail Run", "run"),
            ("Virtual Run", "run"),
            ("Ride", "ride"),
            ("Virtual Ride", "ride"),
            ("E-Bike Ride", "ride"),
            ("Gravel Ride", "ride"),
            ("Mountain Bike Ride", "ride"),
            ("Swim", "swim"),
            ("Walk", "walk"),
            ("Hike", "hike"),
            ("Yoga", "other"),
            ("run", "other"),
        ] {
            assert_eq!(strava_sport(kind), sport, "{kind}");
        }
    }
}
