//! The one place that decides how a viewer stands to an owner. Every read of someone else's
//! things (activities, photos, statistics, profiles, the feed's authors) asks here, so a
//! friendship or a block takes effect everywhere at once, on the next request.

use stride_domain::{Activity, ActivityId, Relationship, UserId, can_view};
use stride_repository::{ActivityRepo, RelationshipRepo};

use crate::{ServiceError, ServiceResult};

/// How `viewer` stands to `owner`: the owner themself without a query, anyone else by two
/// primary-key probes (a block in either direction, then a friendship) on the caller's unit of
/// work. Never cached, so it cannot be stale.
pub async fn relationship<U: RelationshipRepo>(
    uow: &mut U,
    viewer: UserId,
    owner: UserId,
) -> ServiceResult<Relationship> {
    if viewer == owner {
        return Ok(Relationship::Owner);
    }
    Ok(Relationship::between(viewer, owner, uow.tie(viewer, owner).await?))
}

/// Only the owner may change or delete; no query needed to know that.
pub(crate) fn may_modify(viewer: UserId, owner: UserId) -> bool {
    viewer == owner
}

/// The activity if `viewer` may see it; `NotFound` exactly as if it did not exist otherwise.
pub(crate) async fn visible_activity<U: ActivityRepo + RelationshipRepo>(
    uow: &mut U,
    viewer: UserId,
    id: ActivityId,
) -> ServiceResult<Activity> {
    let activity = uow.activity_by_id(id).await?.ok_or(ServiceError::NotFound)?;
    if can_view(relationship(uow, viewer, activity.user_id).await?, activity.visibility) {
        Ok(activity)
    } else {
        Err(ServiceError::NotFound)
    }
}
