//! Who may see what. This is the one place the rule is decided; repositories filter with the
//! same rule (see `Visibility::visible_to`) but never invent their own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Tie, UserId};

/// Who an activity is shared with. The default is `friends`: sharing is opt-in to the public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Private,
    #[default]
    Friends,
    Public,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("visibility must be one of private, friends, public")]
pub struct VisibilityError;

impl Visibility {
    pub const ALL: [Visibility; 3] = [Visibility::Private, Visibility::Friends, Visibility::Public];

    pub fn as_str(&self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Friends => "friends",
            Visibility::Public => "public",
        }
    }

    /// The visibilities a viewer in `relationship` to the owner may see.
    pub fn visible_to(relationship: Relationship) -> &'static [Visibility] {
        match relationship {
            Relationship::Owner => &Visibility::ALL,
            Relationship::Friend => &[Visibility::Friends, Visibility::Public],
            Relationship::Stranger => &[Visibility::Public],
            Relationship::Blocked => &[],
        }
    }
}

impl FromStr for Visibility {
    type Err = VisibilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Visibility::ALL.into_iter().find(|v| v.as_str() == s).ok_or(VisibilityError)
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a viewer stands to the owner of something: the one input of every visibility rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    Owner,
    Friend,
    Stranger,
    /// Either blocked the other: each sees nothing of the other, public things included.
    Blocked,
}

impl Relationship {
    /// How the two are tied is looked up by the caller (it needs I/O) and passed in.
    pub fn between(viewer: UserId, owner: UserId, tie: Tie) -> Self {
        if viewer == owner {
            return Relationship::Owner;
        }
        match tie {
            Tie::Friends => Relationship::Friend,
            Tie::None => Relationship::Stranger,
            Tie::Blocked => Relationship::Blocked,
        }
    }

    /// Statistics are shown to friends (friends + public numbers) and the owner; to everyone
    /// else a user's numbers do not exist.
    pub fn may_view_stats(&self) -> bool {
        matches!(self, Relationship::Owner | Relationship::Friend)
    }

    /// A profile is hidden only by a block.
    pub fn may_view_profile(&self) -> bool {
        !matches!(self, Relationship::Blocked)
    }

    /// Only the owner may change or delete; everyone else gets "not found", never "forbidden",
    /// so that the existence of a hidden activity does not leak.
    pub fn may_modify(&self) -> bool {
        matches!(self, Relationship::Owner)
    }
}

/// May a viewer in `relationship` to the owner see something shared as `visibility`?
pub fn can_view(relationship: Relationship, visibility: Visibility) -> bool {
    Visibility::visible_to(relationship).contains(&visibility)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_see_everything_strangers_only_public() {
        for v in Visibility::ALL {
            assert!(can_view(Relationship::Owner, v));
        }
        assert!(can_view(Relationship::Stranger, Visibility::Public));
        assert!(!can_view(Relationship::Stranger, Visibility::Friends));
        assert!(!can_view(Relationship::Stranger, Visibility::Private));
        assert!(can_view(Relationship::Friend, Visibility::Friends));
        assert!(!can_view(Relationship::Friend, Visibility::Private));
    }

    #[test]
    fn only_owners_may_modify() {
        let (a, b) = (UserId::new(), UserId::new());
        assert!(Relationship::between(a, a, Tie::None).may_modify());
        assert!(!Relationship::between(a, b, Tie::Friends).may_modify());
    }

    #[test]
    fn a_block_hides_everything_public_included() {
        let (a, b) = (UserId::new(), UserId::new());
        let blocked = Relationship::between(a, b, Tie::Blocked);
        for v in Visibility::ALL {
            assert!(!can_view(blocked, v));
        }
        assert!(!blocked.may_view_stats() && !blocked.may_view_profile());
        assert!(Relationship::between(a, a, Tie::Blocked).may_modify());
    }
}
