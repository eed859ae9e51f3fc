//! The one place that decides how a viewer stands to an owner. Friendships are not modelled
//! yet, so everyone but the owner is a stranger; when they arrive, this function consults them
//! and every caller (get, update, delete, stats) follows without change.

use stride_domain::{Relationship, UserId};

pub fn relationship(viewer: UserId, owner: UserId) -> Relationship {
    Relationship::between(viewer, owner, false)
}

/// Statistics of another user are visible to friends only (friendships arrive with the feed,
/// so today only to the owner); everyone else gets "not found".
pub(crate) fn may_view_stats(relationship: Relationship) -> bool {
    matches!(relationship, Relationship::Owner | Relationship::Friend)
}
