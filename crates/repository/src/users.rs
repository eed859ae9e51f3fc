//! Accounts: who can sign in, and the profile they keep.

use std::future::Future;

use stride_domain::{DisplayName, TimeZone, User, UserId, Username};

use crate::codec::{corrupt, from_micros, micros};
use crate::dialect::{Columns, Dialect, Param, read_for_update};
use crate::{RepoError, RepoResult, SqlxUnitOfWork};

/// A user together with the stored hash of their password; only the login path needs this.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

pub trait UserRepo {
    /// Fails with `Conflict { constraint: "users_username_key" }` when the username is taken.
    fn insert_user(&mut self, user: &User, password_hash: &str) -> impl Future<Output = RepoResult<()>> + Send;
    fn user_by_id(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<User>>> + Send;
    /// Like `user_by_id`, but locks the row until the unit of work ends (read-modify-write).
    fn user_by_id_for_update(&mut self, id: UserId) -> impl Future<Output = RepoResult<Option<User>>> + Send;
    fn credentials_by_username(
        &mut self,
        username: &Username,
    ) -> impl Future<Output = RepoResult<Option<Credentials>>> + Send;
    /// Stores `display_name` and `timezone`; `NotFound` if the user is gone.
    fn update_user_profile(&mut self, user: &User) -> impl Future<Output = RepoResult<()>> + Send;
}

/// The columns [`decode_user`] reads, in its order; other repositories select them too.
macro_rules! user_columns {
    () => {
        "users.id, users.username, users.display_name, users.timezone, users.created_at_us"
    };
}
pub(crate) use user_columns;

pub(crate) fn decode_user<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<User> {
    let id = UserId::from_uuid(cols.uuid()?);
    let username = cols.text()?;
    let display_name = cols.text()?;
    let timezone = cols.text()?;
    Ok(User {
        id,
        username: Username::parse(&username).map_err(|_| corrupt("username", &username))?,
        display_name: DisplayName::parse(&display_name).map_err(|_| corrupt("display_name", &display_name))?,
        timezone: TimeZone::parse(&timezone).map_err(|_| corrupt("timezone", &timezone))?,
        created_at: from_micros(cols.big_int()?)?,
    })
}

impl<DB: Dialect> UserRepo for SqlxUnitOfWork<DB> {
    async fn insert_user(&mut self, user: &User, password_hash: &str) -> RepoResult<()> {
        self.execute(
            "INSERT INTO users (id, username, display_name, timezone, password_hash, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Param::Uuid(user.id.as_uuid()),
                Param::Text(user.username.as_str()),
                Param::Text(user.display_name.as_str()),
                Param::Text(user.timezone.name()),
                Param::Text(password_hash),
                micros(user.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn user_by_id(&mut self, id: UserId) -> RepoResult<Option<User>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_user).await
    }

    async fn user_by_id_for_update(&mut self, id: UserId) -> RepoResult<Option<User>> {
        const LOCKING: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1 FOR UPDATE");
        const PLAIN: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let sql = read_for_update::<DB>(LOCKING, PLAIN);
        self.fetch_optional(sql, &[Param::Uuid(id.as_uuid())], decode_user).await
    }

    async fn credentials_by_username(&mut self, username: &Username) -> RepoResult<Option<Credentials>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), ", users.password_hash FROM users WHERE username = $1");
        self.fetch_optional(SQL, &[Param::Text(username.as_str())], |cols| {
            Ok(Credentials { user: decode_user(cols)?, password_hash: cols.text()? })
        })
        .await
    }

    async fn update_user_profile(&mut self, user: &User) -> RepoResult<()> {
        let changed = self
            .execute(
                "UPDATE users SET display_name = $2, timezone = $3 WHERE id = $1",
                &[
                    Param::Uuid(user.id.as_uuid()),
                    Param::Text(user.display_name.as_str()),
                    Param::Text(user.timezone.name()),
                ],
            )
            .await?;
        if changed == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }
}
