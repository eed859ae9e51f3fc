//! Client-chosen idempotency keys, shared by every create that a client may safely retry
//! (activities, photo uploads, and the imports to come).

use chrono::TimeDelta;

use crate::ServiceError;

/// How long a client may safely retry a create with the same `Idempotency-Key`.
pub(crate) const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// A client-chosen key making a create safe to retry: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ServiceError::Invalid {
                field: "Idempotency-Key",
                message: "must be 1 to 255 visible ASCII characters".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_255_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert_eq!(IdempotencyKey::parse(&"k".repeat(255)).unwrap().as_str().len(), 255);
        for bad in ["", "has space", "é", "tab\there", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
