//! Weather: the observation cache by place and hour, and the fenced write of an activity's
//! weather.

use std::future::Future;

use chrono::{DateTime, Utc};
use stride_domain::{ActivityId, Observation, Weather, WeatherCell, WeatherStatus, WeatherTarget};

use crate::activities::weather_json;
use crate::codec::{from_micros, micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::{RepoResult, SqlxUnitOfWork};

pub trait WeatherRepo {
    /// The cached observations of `cell` from `from` to `to` (inclusive), oldest first.
    fn cached_observations(
        &mut self,
        cell: WeatherCell,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Vec<Observation>>> + Send;
    /// Caches observations of `cell`; a newer answer for the same hour replaces the older.
    fn cache_observations(
        &mut self,
        cell: WeatherCell,
        observations: &[Observation],
        now: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Until when the API is not to be asked about `cell` at `hour` (it failed shortly before).
    fn weather_failed_until(
        &mut self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<Option<DateTime<Utc>>>> + Send;
    /// Remembers a failed API call for `cell` at `hour` until `until`.
    fn record_weather_failure(
        &mut self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = RepoResult<()>> + Send;
    /// Deletes at most `limit` remembered failures that ended before `now`; returns how many.
    fn delete_weather_failures_before(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = RepoResult<u64>> + Send;
    /// Records the weather outcome of an activity that is pending (or `unavailable`, which an
    /// operator's retry asks again), fenced by its target: `false` when the activity is gone,
    /// done or cleared, or was moved since the job looked (a newer job then owns it).
    fn record_weather(
        &mut self,
        activity: ActivityId,
        target: &WeatherTarget,
        status: WeatherStatus,
        weather: Option<Weather>,
    ) -> impl Future<Output = RepoResult<bool>> + Send;
}

fn decode_observation<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Observation> {
    Ok(Observation {
        observed_at: from_micros(cols.big_int()?)?,
        temperature_c: cols.real()?,
        wind_speed_ms: cols.real()?,
        precipitation_mm: cols.real()?,
        code: cols.int()?,
    })
}

impl<DB: Dialect> WeatherRepo for SqlxUnitOfWork<DB> {
    async fn cached_observations(
        &mut self,
        cell: WeatherCell,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> RepoResult<Vec<Observation>> {
        const SQL: &str = "SELECT hour_us, temperature_c, wind_speed_ms, precipitation_mm, code \
                           FROM weather_observations WHERE cell_lat = $1 AND cell_lon = $2 \
                           AND hour_us >= $3 AND hour_us <= $4 ORDER BY hour_us";
        let params = [Param::Int(cell.lat_tenths), Param::Int(cell.lon_tenths), micros(from), micros(to)];
        self.fetch_all(SQL, &params, decode_observation).await
    }

    async fn cache_observations(
        &mut self,
        cell: WeatherCell,
        observations: &[Observation],
        now: DateTime<Utc>,
    ) -> RepoResult<()> {
        const SQL: &str = "INSERT INTO weather_observations \
                           (cell_lat, cell_lon, hour_us, temperature_c, wind_speed_ms, precipitation_mm, code, fetched_at_us) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                           ON CONFLICT (cell_lat, cell_lon, hour_us) DO UPDATE SET \
                           temperature_c = excluded.temperature_c, wind_speed_ms = excluded.wind_speed_ms, \
                           precipitation_mm = excluded.precipitation_mm, code = excluded.code, \
                           fetched_at_us = excluded.fetched_at_us";
        for observation in observations {
            let params = [
                Param::Int(cell.lat_tenths),
                Param::Int(cell.lon_tenths),
                micros(observation.observed_at),
                Param::Real(observation.temperature_c),
                Param::Real(observation.wind_speed_ms),
                Param::Real(observation.precipitation_mm),
                Param::Int(observation.code),
                micros(now),
            ];
            self.execute(SQL, &params).await?;
        }
        Ok(())
    }

    async fn weather_failed_until(
        &mut self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
    ) -> RepoResult<Option<DateTime<Utc>>> {
        const SQL: &str =
            "SELECT until_us FROM weather_failures WHERE cell_lat = $1 AND cell_lon = $2 AND hour_us = $3";
        let params = [Param::Int(cell.lat_tenths), Param::Int(cell.lon_tenths), micros(hour)];
        let until = self.fetch_optional(SQL, &params, |cols| Ok(cols.big_int()?)).await?;
        until.map(from_micros).transpose()
    }

    async fn record_weather_failure(
        &mut self,
        cell: WeatherCell,
        hour: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> RepoResult<()> {
        const SQL: &str = "INSERT INTO weather_failures (cell_lat, cell_lon, hour_us, until_us) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (cell_lat, cell_lon, hour_us) DO UPDATE SET until_us = excluded.until_us";
        let params = [Param::Int(cell.lat_tenths), Param::Int(cell.lon_tenths), micros(hour), micros(until)];
        self.execute(SQL, &params).await?;
        Ok(())
    }

    async fn delete_weather_failures_before(&mut self, now: DateTime<Utc>, limit: u32) -> RepoResult<u64> {
        const SQL: &str = "DELETE FROM weather_failures WHERE (cell_lat, cell_lon, hour_us) IN \
                           (SELECT cell_lat, cell_lon, hour_us FROM weather_failures WHERE until_us < $1 LIMIT $2)";
        self.execute(SQL, &[micros(now), Param::BigInt(i64::from(limit))]).await
    }

    async fn record_weather(
        &mut self,
        activity: ActivityId,
        target: &WeatherTarget,
        status: WeatherStatus,
        weather: Option<Weather>,
    ) -> RepoResult<bool> {
        const SQL: &str = "UPDATE activities SET weather_status = $2, weather = $3 \
                           WHERE id = $1 AND weather_status IN ('pending', 'unavailable') \
                           AND start_lat = $4 AND start_lon = $5 AND started_at_us = $6";
        let weather = weather_json(weather.as_ref())?;
        let params = [
            Param::Uuid(activity.as_uuid()),
            Param::Text(status.as_str()),
            Param::OptText(weather.as_deref()),
            Param::Real(target.start.lat()),
            Param::Real(target.start.lon()),
            Param::BigInt(target.started_at_utc_micros),
        ];
        Ok(self.execute(SQL, &params).await? == 1)
    }
}
