//! The garbage of imports: stored files no import item names (an upload whose process died
//! between storing its files and recording the import) and stored points no activity has (an
//! item whose commit's outcome was unknown). Files and points minted within the grace are left
//! alone: their import may still be recording them.

use std::time::Duration;

use stride_concurrency::Deadline;
use stride_repository::{ActivityRepo, BlobKey, ImportRepo, Store};
use uuid::Uuid;

use super::ImportService;
use crate::ServiceResult;

/// How young a blob must be to be left alone: longer than any upload or item runs.
const GRACE: Duration = Duration::from_secs(60 * 60);

fn minted_ms(id: Uuid) -> Option<u64> {
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    Some(seconds * 1000 + u64::from(nanos) / 1_000_000)
}

/// The id a blob name starts with after `prefix` (`imports/<id>/…`, `tracks/<id>.points`).
fn id_in(key: &str, prefix: &str) -> Option<Uuid> {
    let rest = key.strip_prefix(prefix)?;
    let end = rest.find(['/', '.']).unwrap_or(rest.len());
    Uuid::parse_str(&rest[..end]).ok()
}

impl<S: Store> ImportService<S> {
    /// Deletes unnamed import files and unowned points; (blobs looked at, deleted).
    pub async fn collect_garbage(&self, deadline: Deadline, dry_run: bool) -> ServiceResult<(usize, Vec<BlobKey>)> {
        let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let grace_ms = GRACE.as_millis() as u64;
        let old_enough = |id: Uuid| minted_ms(id).is_some_and(|minted| minted.saturating_add(grace_ms) <= now_ms);
        let files = self.storage.list("imports/", deadline).await?;
        let points = self.storage.list("tracks/", deadline).await?;
        let mut garbage = Vec::new();
        let mut uow = self.store.read(deadline).await?;
        for key in &files {
            if id_in(key.as_str(), "imports/").is_some_and(old_enough)
                && !uow.blob_named_by_import(key.as_str()).await?
            {
                garbage.push(key.clone());
            }
        }
        for key in &points {
            let Some(id) = id_in(key.as_str(), "tracks/") else { continue };
            let activity = stride_domain::ActivityId::from_uuid(id);
            if old_enough(id) && uow.activity_by_id(activity).await?.is_none() {
                garbage.push(key.clone());
            }
        }
        drop(uow);
        self.storage.delete_garbage(&garbage, dry_run, deadline).await?;
        Ok((files.len() + points.len(), garbage))
    }
}

#[cfg(test)]
mod tests {
    use super::id_in;

    #[test]
    fn ids_are_read_from_both_kinds_of_name() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(id_in(&format!("imports/{id}/00003"), "imports/"), Some(id));
        assert_eq!(id_in(&format!("tracks/{id}.points"), "tracks/"), Some(id));
        assert_eq!(id_in("tracks/not-an-id.points", "tracks/"), None);
        assert_eq!(id_in(&format!("photos/{id}/x"), "tracks/"), None);
    }
}
