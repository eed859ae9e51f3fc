//! Identifiers. Both are UUIDv7: time-ordered, so primary-key indexes stay append-mostly and
//! "newest first, ties by id" orders the same way the ids were minted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid id")]
pub struct IdError;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Mints a fresh time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError)
            }
        }
    };
}

uuid_id!(
    /// A user's identity; never reused, never shown as anything but an opaque string.
    UserId
);
uuid_id!(
    /// An activity's identity.
    ActivityId
);
uuid_id!(
    /// A pending friend request's identity.
    FriendRequestId
);
uuid_id!(
    /// A background job's identity.
    JobId
);
uuid_id!(
    /// A photo's identity; also the folder of its blobs in object storage.
    PhotoId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_minted_later_sort_after_earlier_ones() {
        let first = ActivityId::new();
        let second = ActivityId::new();
        assert!(first < second);
    }

    #[test]
    fn a_malformed_id_is_rejected() {
        assert_eq!("not-a-uuid".parse::<UserId>(), Err(IdError));
        let id = UserId::new();
        assert_eq!(id.to_string().parse::<UserId>(), Ok(id));
    }
}

uuid_id!(
    /// One upload of track files (or, later, an archive), processed as a durable job.
    ImportId
);

uuid_id!(
    /// A privacy zone: a circle whose points others never see.
    ZoneId
);
