//! Activities: what people logged, and the keyset pages they are listed in.

use std::future::Future;

use stride_domain::{
    Activity, ActivityCursor, ActivityId, Description, Distance, LatLng, MovingTime, StartedAt, Title, TrackSummary,
    UserId, Weather,
};

use crate::codec::{corrupt, day, from_micros, micros};
use crate::dialect::{Columns, Dialect, Param, read_for_update};
use crate::{RepoError, RepoResult, SqlxUnitOfWork};

pub trait ActivityRepo {
    fn insert_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
    fn activity_by_id(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
    /// Like `activity_by_id`, but also locks the row until the unit of work ends, so a
    /// read-modify-write cannot lose a concurrent update.
    fn activity_by_id_for_update(
        &mut self,
        id: ActivityId,
    ) -> impl Future<Output = RepoResult<Option<Activity>>> + Send;
    /// One page of an owner's activities, newest `started_at` first, ties by id descending,
    /// strictly after `after` in that order.
    fn list_activities(
        &mut self,
        owner: UserId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<Vec<Activity>>> + Send;
    /// Stores every mutable field; `NotFound` if the row is gone.
    fn update_activity(&mut self, activity: &Activity) -> impl Future<Output = RepoResult<()>> + Send;
    /// Returns whether a row was removed.
    fn delete_activity(&mut self, id: ActivityId) -> impl Future<Output = RepoResult<bool>> + Send;
}

macro_rules! activity_columns {
    () => {
        "id, user_id, sport, title, started_at_us, utc_offset_s, duration_s, distance_m, visibility, \
         created_at_us, updated_at_us, photo_count, start_lat, start_lon, weather_status, weather, \
         description, source, track"
    };
}
pub(crate) use activity_columns;

pub(crate) fn decode_activity<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Activity> {
    let id = ActivityId::from_uuid(cols.uuid()?);
    let user_id = UserId::from_uuid(cols.uuid()?);
    let sport = cols.text()?;
    let title = cols.text()?;
    let (started_at_us, utc_offset_s) = (cols.big_int()?, cols.int()?);
    let duration_s = cols.int()?;
    let distance_m = cols.real()?;
    let visibility = cols.text()?;
    Ok(Activity {
        id,
        user_id,
        sport: sport.parse().map_err(|_| corrupt("sport", &sport))?,
        title: Title::parse(&title).map_err(|_| corrupt("title", &title))?,
        started_at: StartedAt::from_parts(started_at_us, utc_offset_s)
            .ok_or_else(|| corrupt("started_at", (started_at_us, utc_offset_s)))?,
        duration: MovingTime::from_seconds(duration_s.into()).map_err(|_| corrupt("duration_s", duration_s))?,
        distance: Distance::from_metres(distance_m).map_err(|_| corrupt("distance_m", distance_m))?,
        visibility: visibility.parse().map_err(|_| corrupt("visibility", &visibility))?,
        created_at: from_micros(cols.big_int()?)?,
        updated_at: from_micros(cols.big_int()?)?,
        photo_count: {
            let count = cols.int()?;
            u32::try_from(count).map_err(|_| corrupt("photo_count", count))?
        },
        start_latlng: match (cols.optional_real()?, cols.optional_real()?) {
            (Some(lat), Some(lon)) => Some(LatLng::new(lat, lon).map_err(|_| corrupt("start_lat/lon", (lat, lon)))?),
            (None, None) => None,
            other => return Err(corrupt("start_lat/lon", other)),
        },
        weather_status: {
            let status = cols.text()?;
            status.parse().map_err(|_| corrupt("weather_status", &status))?
        },
        weather: match cols.optional_text()? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("weather", &json))?),
            None => None,
        },
        description: match cols.optional_text()? {
            Some(text) => Some(Description::parse(&text).map_err(|_| corrupt("description", &text))?),
            None => None,
        },
        source: {
            let source = cols.text()?;
            source.parse().map_err(|_| corrupt("source", &source))?
        },
        track: match cols.optional_text()? {
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("track", &json))?),
            None => None,
        },
    })
}

/// The track column's JSON.
fn track_json(track: Option<&TrackSummary>) -> RepoResult<Option<String>> {
    track.map(serde_json::to_string).transpose().map_err(|e| RepoError::Corrupt(format!("track: {e}")))
}

/// The weather column's JSON.
pub(crate) fn weather_json(weather: Option<&Weather>) -> RepoResult<Option<String>> {
    weather.map(serde_json::to_string).transpose().map_err(|e| RepoError::Corrupt(format!("weather: {e}")))
}

impl<DB: Dialect> ActivityRepo for SqlxUnitOfWork<DB> {
    async fn insert_activity(&mut self, activity: &Activity) -> RepoResult<()> {
        const SQL: &str = concat!(
            "INSERT INTO activities (",
            activity_columns!(),
            ", local_day) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20)"
        );
        let weather = weather_json(activity.weather.as_ref())?;
        let track = track_json(activity.track.as_ref())?;
        self.execute(
            SQL,
            &[
                Param::Uuid(activity.id.as_uuid()),
                Param::Uuid(activity.user_id.as_uuid()),
                Param::Text(activity.sport.as_str()),
                Param::Text(activity.title.as_str()),
                Param::BigInt(activity.started_at.utc_micros()),
                Param::Int(activity.started_at.offset_seconds()),
                Param::Int(activity.duration.seconds() as i32),
                Param::Real(activity.distance.metres()),
                Param::Text(activity.visibility.as_str()),
                micros(activity.created_at),
                micros(activity.updated_at),
                Param::Int(activity.photo_count as i32),
                Param::OptReal(activity.start_latlng.map(|p| p.lat())),
                Param::OptReal(activity.start_latlng.map(|p| p.lon())),
                Param::Text(activity.weather_status.as_str()),
                Param::OptText(weather.as_deref()),
                Param::OptText(activity.description.as_ref().map(Description::as_str)),
                Param::Text(activity.source.as_str()),
                Param::OptText(track.as_deref()),
                day(activity.local_date().day_number()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn activity_by_id(&mut self, id: ActivityId) -> RepoResult<Option<Activity>> {
        const SQL: &str = concat!("SELECT ", activity_columns!(), " FROM activities WHERE id = $1");
        self.fetch_optional(SQL, &[Param::Uuid(id.as_uuid())], decode_activity).await
    }

    async fn activity_by_id_for_update(&mut self, id: ActivityId) -> RepoResult<Option<Activity>> {
        const LOCKING: &str = concat!("SELECT ", activity_columns!(), " FROM activities WHERE id = $1 FOR UPDATE");
        const PLAIN: &str = concat!("SELECT ", activity_columns!(), " FROM activities WHERE id = $1");
        let sql = read_for_update::<DB>(LOCKING, PLAIN);
        self.fetch_optional(sql, &[Param::Uuid(id.as_uuid())], decode_activity).await
    }

    async fn list_activities(
        &mut self,
        owner: UserId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> RepoResult<Vec<Activity>> {
        const FIRST_PAGE: &str = concat!(
            "SELECT ",
            activity_columns!(),
            " FROM activities WHERE user_id = $1 ORDER BY started_at_us DESC, id DESC LIMIT $2"
        );
        const LATER_PAGE: &str = concat!(
            "SELECT ",
            activity_columns!(),
            " FROM activities WHERE user_id = $1 \
             AND (started_at_us < $2 OR (started_at_us = $2 AND id < $3)) \
             ORDER BY started_at_us DESC, id DESC LIMIT $4"
        );
        let owner = Param::Uuid(owner.as_uuid());
        let limit = Param::BigInt(i64::from(limit));
        match after {
            None => self.fetch_all(FIRST_PAGE, &[owner, limit], decode_activity).await,
            Some(cursor) => {
                let after = [Param::BigInt(cursor.started_at_utc_micros), Param::Uuid(cursor.id.as_uuid())];
                self.fetch_all(LATER_PAGE, &[owner, after[0], after[1], limit], decode_activity).await
            }
        }
    }

    async fn update_activity(&mut self, activity: &Activity) -> RepoResult<()> {
        let weather = weather_json(activity.weather.as_ref())?;
        let changed = self
            .execute(
                "UPDATE activities SET sport = $2, title = $3, started_at_us = $4, utc_offset_s = $5, \
                 local_day = $6, duration_s = $7, distance_m = $8, visibility = $9, updated_at_us = $10, \
                 start_lat = $11, start_lon = $12, weather_status = $13, weather = $14, description = $15 \
                 WHERE id = $1",
                &[
                    Param::Uuid(activity.id.as_uuid()),
                    Param::Text(activity.sport.as_str()),
                    Param::Text(activity.title.as_str()),
                    Param::BigInt(activity.started_at.utc_micros()),
                    Param::Int(activity.started_at.offset_seconds()),
                    day(activity.local_date().day_number()),
                    Param::Int(activity.duration.seconds() as i32),
                    Param::Real(activity.distance.metres()),
                    Param::Text(activity.visibility.as_str()),
                    micros(activity.updated_at),
                    Param::OptReal(activity.start_latlng.map(|p| p.lat())),
                    Param::OptReal(activity.start_latlng.map(|p| p.lon())),
                    Param::Text(activity.weather_status.as_str()),
                    Param::OptText(weather.as_deref()),
                    Param::OptText(activity.description.as_ref().map(Description::as_str)),
                ],
            )
            .await?;
        if changed == 0 { Err(RepoError::NotFound) } else { Ok(()) }
    }

    async fn delete_activity(&mut self, id: ActivityId) -> RepoResult<bool> {
        let removed = self.execute("DELETE FROM activities WHERE id = $1", &[Param::Uuid(id.as_uuid())]).await?;
        Ok(removed > 0)
    }
}
