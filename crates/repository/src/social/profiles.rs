//! Who someone is to others: their public profile (id, username, display name).

use std::future::Future;

use stride_domain::{Profile, UserId, Username};

use super::{MAX_FEED_CHUNK, decode_profile};
use crate::dialect::{Dialect, Param};
use crate::statements::statement;
use crate::{RepoResult, SqlxUnitOfWork};

pub trait ProfileRepo {
    fn profile_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
    fn profile_by_username(&mut self, username: &Username) -> impl Future<Output = RepoResult<Option<Profile>>> + Send;
    /// The profiles of `ids` that exist, in no particular order (at most [`MAX_FEED_CHUNK`]).
    fn profiles(&mut self, ids: &[UserId]) -> impl Future<Output = RepoResult<Vec<Profile>>> + Send;
}

impl<DB: Dialect> ProfileRepo for SqlxUnitOfWork<DB> {
    async fn profile_by_id(&mut self, id: UserId) -> RepoResult<Option<Profile>> {
        const SQL: &str = "SELECT users.id, users.username, users.display_name FROM users WHERE id = $1";
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_profile).await
    }

    async fn profile_by_username(&mut self, username: &Username) -> RepoResult<Option<Profile>> {
        const SQL: &str = "SELECT users.id, users.username, users.display_name FROM users WHERE username = $1";
        self.fetch_optional(SQL, &[Param::Text(username.as_str())], decode_profile).await
    }

    async fn profiles(&mut self, ids: &[UserId]) -> RepoResult<Vec<Profile>> {
        let mut found = Vec::with_capacity(ids.len());
        for part in ids.chunks(MAX_FEED_CHUNK) {
            let sql = statement("profiles", part.len(), || {
                let list: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                format!(
                    "SELECT users.id, users.username, users.display_name FROM users WHERE id IN ({})",
                    list.join(", ")
                )
            });
            let params: Vec<Param<'_>> = part.iter().map(|id| Param::Uuid(id.as_uuid())).collect();
            found.extend(self.fetch_all(sql, &params, decode_profile).await?);
        }
        Ok(found)
    }
}
