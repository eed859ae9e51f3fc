//! Keyset pagination cursors for "newest first, ties by id descending".
//!
//! A cursor names the last item of the previous page by its sort key, not by an offset, so an
//! activity added while a client pages through never shifts items between pages: every item
//! appears exactly once. The encoding is opaque to clients (base64url) but versioned so it can
//! change later.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ActivityId;

/// A keyset cursor as clients see it: an opaque string.
pub trait Cursor: Sized {
    fn encode(&self) -> String;
    fn decode(raw: &str) -> Result<Self, CursorError>;
}

/// One page of any keyset-paged list (activities, the feed, friends, requests, blocks).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page from `limit + 1` items read: the extra one says whether another page follows, so
    /// the last page knows it is the last; `key` is the cursor that follows an item.
    pub fn from_overfetched(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Self {
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCursor {
    pub started_at_utc_micros: i64,
    pub id: ActivityId,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cursor is not one this server issued")]
pub struct CursorError;

impl Cursor for ActivityCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.started_at_utc_micros, self.id))
    }

    fn decode(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
        let mut parts = text.splitn(3, ':');
        let (Some("v1"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CursorError);
        };
        Ok(Self {
            started_at_utc_micros: micros.parse().map_err(|_| CursorError)?,
            id: id.parse().map_err(|_| CursorError)?,
        })
    }
}

/// The cursor of lists ordered "newest first, ties by id descending" over anything that is not
/// an activity (friends, requests, blocks): an instant and a uuid. A different version tag
/// keeps it from being accepted where an activity cursor is expected, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub at_utc_micros: i64,
    pub id: uuid::Uuid,
}

impl Cursor for ListCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("l1:{}:{}", self.at_utc_micros, self.id))
    }

    fn decode(raw: &str) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
        let mut parts = text.splitn(3, ':');
        let (Some("l1"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CursorError);
        };
        Ok(Self {
            at_utc_micros: micros.parse().map_err(|_| CursorError)?,
            id: uuid::Uuid::parse_str(id).map_err(|_| CursorError)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_from_one_item_too_many_has_the_cursor_of_its_last_item() {
        let more = Page::from_overfetched(vec![5, 4, 3], 2, |n| n * 10);
        assert_eq!(more, Page { items: vec![5, 4], next_cursor: Some(40) });
        let last = Page::from_overfetched(vec![5, 4], 2, |n| n * 10);
        assert_eq!(last, Page { items: vec![5, 4], next_cursor: None });
        let empty = Page::from_overfetched(Vec::<i32>::new(), 2, |n| n * 10);
        assert_eq!(empty.next_cursor, None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = ActivityCursor { started_at_utc_micros: -42, id: ActivityId::new() };
        assert_eq!(ActivityCursor::decode(&cursor.encode()), Ok(cursor));
        assert_eq!(ActivityCursor::decode("%%%"), Err(CursorError));
        assert_eq!(ActivityCursor::decode(&URL_SAFE_NO_PAD.encode("v2:1:x")), Err(CursorError));
    }

    #[test]
    fn list_and_activity_cursors_are_not_interchangeable() {
        let list = ListCursor { at_utc_micros: 7, id: uuid::Uuid::now_v7() };
        assert_eq!(ListCursor::decode(&list.encode()), Ok(list));
        assert_eq!(ActivityCursor::decode(&list.encode()), Err(CursorError));
        let activity = ActivityCursor { started_at_utc_micros: 7, id: ActivityId::new() };
        assert_eq!(ListCursor::decode(&activity.encode()), Err(CursorError));
    }
}
