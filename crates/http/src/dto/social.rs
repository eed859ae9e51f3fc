//! The shapes of profiles, friends, blocks and the feed in the API.

use super::*;

/// What anyone who may see a user sees of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileBody {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

impl From<&stride_domain::Profile> for ProfileBody {
    fn from(p: &stride_domain::Profile) -> Self {
        Self {
            id: p.id.to_string(),
            username: p.username.as_str().to_owned(),
            display_name: p.display_name.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FriendRequestCreate {
    /// Who to ask.
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestBody {
    pub id: String,
    pub from: ProfileBody,
    pub to: ProfileBody,
    pub created_at: String,
}

impl From<&stride_domain::FriendRequest> for FriendRequestBody {
    fn from(r: &stride_domain::FriendRequest) -> Self {
        Self {
            id: r.id.to_string(),
            from: ProfileBody::from(&r.from),
            to: ProfileBody::from(&r.to),
            created_at: r.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }
    }
}

/// A friend or a blocked person, and since when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionBody {
    pub user: ProfileBody,
    pub since: String,
}

impl From<&stride_domain::Connection> for ConnectionBody {
    fn from(c: &stride_domain::Connection) -> Self {
        Self { user: ProfileBody::from(&c.user), since: c.since.to_rfc3339_opts(SecondsFormat::AutoSi, true) }
    }
}

/// Someone you blocked: their id always; their username and display name only while they have
/// not blocked you too (then both are absent, and a rename of theirs never reaches you).
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedUserBody {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A block: whom, and since when.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockBody {
    pub user: BlockedUserBody,
    pub since: String,
}

impl From<&stride_domain::BlockedUser> for BlockBody {
    fn from(b: &stride_domain::BlockedUser) -> Self {
        let user = BlockedUserBody {
            id: b.id.to_string(),
            username: b.profile.as_ref().map(|p| p.username.as_str().to_owned()),
            display_name: b.profile.as_ref().map(|p| p.display_name.as_str().to_owned()),
        };
        Self { user, since: b.since.to_rfc3339_opts(SecondsFormat::AutoSi, true) }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1–100, default 50.
    #[param(value_type = u32, required = false)]
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListRequestsQuery {
    /// `incoming` (default: requests to you) or `outgoing` (requests you sent).
    #[param(value_type = Option<String>, required = false)]
    pub direction: Option<String>,
    /// 1–100, default 50.
    #[param(value_type = u32, required = false)]
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockCreate {
    /// Who to block.
    pub user_id: String,
}

/// A feed item: the activity JSON plus who did it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedItemBody {
    #[serde(flatten)]
    pub activity: ActivityBody,
    pub author: ProfileBody,
}

impl PageBody<FeedItemBody> {
    pub fn feed_seen_by(page: &stride_services::FeedPage, viewer: stride_domain::UserId) -> Self {
        Self::of(page, |item| FeedItemBody {
            activity: ActivityBody::seen_by(&item.activity, viewer),
            author: ProfileBody::from(&item.author),
        })
    }
}
