/// Why a file gave no track. Each maps to one item error code of an import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// None of GPX, TCX or FIT (gzipped or not): refused at upload (415), never an item.
    #[error("not a GPX, TCX or FIT file")]
    UnknownFormat,
    /// Malformed or truncated XML or FIT, a FIT CRC mismatch, a DOCTYPE or entity declaration.
    #[error("{0}")]
    Invalid(String),
    /// Fewer than 2 timed points, or a moving time that rounds to 0.
    #[error("{0}")]
    NoTrack(String),
    /// Over 100 MiB once gunzipped, or over 200,000 points.
    #[error("{0}")]
    TooLarge(String),
}

impl TrackError {
    /// The item error code the import API shows.
    pub fn code(&self) -> &'static str {
        match self {
            TrackError::UnknownFormat => "unsupported_format",
            TrackError::Invalid(_) => "invalid_file",
            TrackError::NoTrack(_) => "no_track",
            TrackError::TooLarge(_) => "too_large",
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        TrackError::Invalid(message.into())
    }
}
