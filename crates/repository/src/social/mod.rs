//! Profiles, relationships (requests, friendships, blocks) and the feed's queries: three
//! repository traits, one file each, over the helpers they share here.

mod feed;
mod profiles;
mod relationships;

use stride_domain::{
    Activity, ActivityCursor, Connection, DisplayName, FriendRequest, FriendRequestId, ListCursor, Profile, UserId,
    Username,
};

use crate::activities::{activity_columns, decode_activity};
use crate::codec::{corrupt, from_micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::statements::statement;
use crate::{RepoResult, SqlxUnitOfWork};

pub use feed::{FeedRepo, MAX_FEED_CHUNK};
pub use profiles::ProfileRepo;
pub use relationships::RelationshipRepo;

pub(super) fn decode_profile<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Profile> {
    let id = UserId::from_uuid(cols.uuid()?);
    let username = cols.text()?;
    let display_name = cols.text()?;
    Ok(Profile {
        id,
        username: Username::parse(&username).map_err(|_| corrupt("username", &username))?,
        display_name: DisplayName::parse(&display_name).map_err(|_| corrupt("display_name", &display_name))?,
    })
}

pub(super) fn decode_request<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<FriendRequest> {
    let id = FriendRequestId::from_uuid(cols.uuid()?);
    let created_at = from_micros(cols.big_int()?)?;
    Ok(FriendRequest { id, created_at, from: decode_profile(cols)?, to: decode_profile(cols)? })
}

pub(super) fn decode_connection<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Connection> {
    let since = from_micros(cols.big_int()?)?;
    Ok(Connection { since, user: decode_profile(cols)? })
}

/// "Before any item": the keyset bound of a first page, so first and later pages share one
/// statement (every real key sorts below it).
pub(super) fn keyset(after: Option<ActivityCursor>) -> (i64, uuid::Uuid) {
    after.map_or((i64::MAX, uuid::Uuid::max()), |c| (c.started_at_utc_micros, c.id.as_uuid()))
}

pub(super) fn list_keyset(after: Option<ListCursor>) -> (i64, uuid::Uuid) {
    after.map_or((i64::MAX, uuid::Uuid::max()), |c| (c.at_utc_micros, c.id))
}

/// `$1`, `$2`: the keyset; `$3`: the limit; `$4…`: the authors.
pub(super) fn chunk_sql(authors: usize) -> &'static str {
    statement("chunk", authors, || {
        let per_author: Vec<String> = (0..authors)
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT {cols} FROM activities WHERE user_id = ${param} \
                     AND visibility <> 'private' \
                     AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
                     ORDER BY started_at_us DESC, id DESC LIMIT $3) AS a{i}",
                    cols = activity_columns!(),
                    param = i + 4,
                )
            })
            .collect();
        format!(
            "SELECT * FROM ({}) AS chunk ORDER BY started_at_us DESC, id DESC LIMIT $3",
            per_author.join(" UNION ALL ")
        )
    })
}

/// The chunk query where the engine takes arrays: `$1`, `$2` the keyset, `$3` the limit, `$4`
/// the authors.
pub(super) const LATERAL_CHUNK_SQL: &str = concat!(
    "SELECT a.* FROM unnest($4::uuid[]) AS f(author) CROSS JOIN LATERAL (SELECT ",
    activity_columns!(),
    " FROM activities WHERE user_id = f.author AND visibility <> 'private' \
     AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
     ORDER BY started_at_us DESC, id DESC LIMIT $3) AS a \
     ORDER BY a.started_at_us DESC, a.id DESC LIMIT $3"
);

pub(super) fn reference_sql(authors: usize) -> &'static str {
    statement("reference", authors, || {
        let list: Vec<String> = (0..authors).map(|i| format!("${}", i + 4)).collect();
        format!(
            "SELECT {cols} FROM activities WHERE user_id IN ({list}) AND visibility <> 'private' \
             AND (started_at_us < $1 OR (started_at_us = $1 AND id < $2)) \
             ORDER BY started_at_us DESC, id DESC LIMIT $3",
            cols = activity_columns!(),
            list = list.join(", "),
        )
    })
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    pub(super) async fn authored_page(
        &mut self,
        sql: &'static str,
        authors: &[UserId],
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        let (at, id) = keyset(after);
        let mut params = Vec::with_capacity(authors.len() + 3);
        params.extend([Param::BigInt(at), Param::Uuid(id), Param::BigInt(i64::from(limit))]);
        params.extend(authors.iter().map(|a| Param::Uuid(a.as_uuid())));
        self.fetch_all(sql, &params, decode_activity).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_texts_are_built_once_per_shape_and_count() {
        let first = chunk_sql(3);
        assert!(std::ptr::eq(first, chunk_sql(3)));
        assert_eq!(first.matches("UNION ALL").count(), 2);
        assert!(first.contains("$6") && !first.contains("$7"));
        assert!(!std::ptr::eq(first, reference_sql(3)));
    }
}
