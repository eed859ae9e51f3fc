//! Privacy zones: at most ten circles per user whose points others never see.

use std::future::Future;

use stride_domain::{PrivacyZone, UserId, ZoneId};

use crate::codec::{from_micros, micros};
use crate::dialect::{Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

pub trait ZoneRepo {
    fn insert_zone(&mut self, zone: &PrivacyZone) -> impl Future<Output = RepoResult<()>> + Send;
    /// The user's zones, oldest first.
    fn zones_of(&mut self, user: UserId) -> impl Future<Output = RepoResult<Vec<PrivacyZone>>> + Send;
    /// Whether a zone of `user` was removed.
    fn delete_zone(&mut self, user: UserId, id: ZoneId) -> impl Future<Output = RepoResult<bool>> + Send;
}

impl<DB: Dialect> ZoneRepo for SqlxUnitOfWork<DB> {
    async fn insert_zone(&mut self, zone: &PrivacyZone) -> RepoResult<()> {
        self.execute(
            "INSERT INTO privacy_zones (id, user_id, lat, lon, radius_m, created_at_us) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Param::Uuid(zone.id.as_uuid()),
                Param::Uuid(zone.user_id.as_uuid()),
                Param::Real(zone.lat),
                Param::Real(zone.lon),
                Param::Real(zone.radius_m),
                micros(zone.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn zones_of(&mut self, user: UserId) -> RepoResult<Vec<PrivacyZone>> {
        let sql =
            "SELECT id, user_id, lat, lon, radius_m, created_at_us FROM privacy_zones WHERE user_id = $1 ORDER BY id";
        self.fetch_all(sql, &[Param::Uuid(user.as_uuid())], |cols| {
            Ok(PrivacyZone {
                id: ZoneId::from_uuid(cols.uuid()?),
                user_id: UserId::from_uuid(cols.uuid()?),
                lat: cols.real()?,
                lon: cols.real()?,
                radius_m: cols.real()?,
                created_at: from_micros(cols.big_int()?)?,
            })
        })
        .await
    }

    async fn delete_zone(&mut self, user: UserId, id: ZoneId) -> RepoResult<bool> {
        let sql = "DELETE FROM privacy_zones WHERE id = $1 AND user_id = $2";
        Ok(self.execute(sql, &[Param::Uuid(id.as_uuid()), Param::Uuid(user.as_uuid())]).await? > 0)
    }
}
