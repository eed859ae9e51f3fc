//! Reading tracks back — streams, GPX export, the original file — and privacy zones, which
//! decide what of a track anyone but its owner sees.
//!
//! A zone hides the points inside it from others everywhere: streams (every key of such an
//! index), the export, and the route (polyline and bounding box, computed again from the
//! remaining points). The totals stay. Zones apply on the next request, so what others see is
//! computed when they look; [`TrackViews`] caches it per activity and zone set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use stride_concurrency::Deadline;
use stride_domain::{Activity, ActivityId, PrivacyZone, UserId, ZoneId, track_points_blob};
use stride_repository::{BlobKey, ImportRepo, Store, ZoneRepo};
use stride_tracks::{Resolution, StreamKey, Streams, Zone, decode_points, route, to_gpx};

use crate::photos::storage::Storage;
use crate::uow::finish;
use crate::{Clock, CpuPool, ServiceError, ServiceResult};

/// One stream as the API lists it: a value per shown point, `None` where the point has none.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Seconds from the first timed point.
    Time(Vec<Option<f64>>),
    Latlng(Vec<Option<[f64; 2]>>),
    Altitude(Vec<Option<f64>>),
    /// The distance along the whole track, in metres.
    Distance(Vec<f64>),
    Heartrate(Vec<Option<u8>>),
    Cadence(Vec<Option<u8>>),
    Power(Vec<Option<u16>>),
}

/// What others see of a route: the owner's zones taken out.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    polyline: Option<String>,
    tolerance_m: Option<f64>,
    bbox: Option<[f64; 4]>,
}

/// The routes of activities as others see them, cached by activity, its last change and the
/// owner's zone set.
#[derive(Clone)]
pub struct TrackViews<S> {
    store: S,
    storage: Storage,
    cpu: CpuPool,
    shown: moka::future::Cache<(ActivityId, i64, u64), Arc<Shown>>,
}

fn zones_key(zones: &[PrivacyZone]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for zone in zones {
        zone.id.hash(&mut hasher);
    }
    hasher.finish()
}

fn as_zones(zones: &[PrivacyZone]) -> Vec<Zone> {
    zones.iter().map(|z| Zone { lat: z.lat, lon: z.lon, radius_m: z.radius_m }).collect()
}

impl<S: Store> TrackViews<S> {
    pub(crate) fn new(store: S, storage: Storage, cpu: CpuPool) -> Self {
        let shown = moka::future::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(600)).build();
        Self { store, storage, cpu, shown }
    }

    pub(crate) fn cpu(&self) -> &CpuPool {
        &self.cpu
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The points of `activity` that `viewer` may see.
    async fn points(&self, deadline: Deadline, activity: &Activity, viewer: UserId) -> ServiceResult<Streams> {
        let zones = if activity.user_id == viewer {
            Vec::new()
        } else {
            self.store.read(deadline).await?.zones_of(activity.user_id).await?
        };
        let key = BlobKey::parse(&track_points_blob(activity.id)).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let bytes = self.storage.get(&key, deadline).await?;
        let zones = as_zones(&zones);
        self.cpu
            .run(move || decode_points(&bytes).map(|streams| streams.visible(&zones)))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Replaces the route of every activity in `activities` that `viewer` does not own, and
    /// whose owner has zones, by the route without the zones' points.
    pub async fn show_to(
        &self,
        deadline: Deadline,
        viewer: UserId,
        activities: &mut [&mut Activity],
    ) -> ServiceResult<()> {
        let mut zones_by_owner: HashMap<UserId, Vec<PrivacyZone>> = HashMap::new();
        for activity in activities.iter_mut() {
            if activity.user_id == viewer || activity.track.is_none() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = zones_by_owner.entry(activity.user_id) {
                entry.insert(self.store.read(deadline).await?.zones_of(activity.user_id).await?);
            }
            let zones = &zones_by_owner[&activity.user_id];
            if zones.is_empty() {
                continue;
            }
            let key = (activity.id, activity.updated_at.timestamp_micros(), zones_key(zones));
            let this = self.clone();
            let (id, zones) = (activity.id, as_zones(zones));
            let shown = self
                .shown
                .try_get_with(key, async move {
                    let bytes = this
                        .storage
                        .get(
                            &BlobKey::parse(&track_points_blob(id))
                                .map_err(|e| ServiceError::Internal(e.to_string()))?,
                            deadline,
                        )
                        .await?;
                    let shown = this
                        .cpu
                        .run(move || {
                            let visible = decode_points(&bytes)?.visible(&zones);
                            let route = route(&visible.positions());
                            Ok::<_, stride_tracks::TrackError>(Shown {
                                polyline: route.as_ref().map(|r| r.polyline.clone()),
                                tolerance_m: route.as_ref().map(|r| r.tolerance_m),
                                bbox: route.as_ref().map(|r| r.bbox),
                            })
                        })
                        .await?
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    Ok::<_, ServiceError>(Arc::new(shown))
                })
                .await
                .map_err(|e| (*e).clone())?;
            if let Some(track) = activity.track.as_mut() {
                track.polyline = shown.polyline.clone();
                track.polyline_tolerance_m = shown.tolerance_m;
                track.bbox = shown.bbox;
            }
        }
        Ok(())
    }
}

/// Streams, exports, files and zones.
#[derive(Clone)]
pub struct TrackService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    views: TrackViews<S>,
}

impl<S: Store> TrackService<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>, views: TrackViews<S>) -> Self {
        Self { store, clock, views }
    }

    async fn recorded(&self, deadline: Deadline, viewer: UserId, id: ActivityId) -> ServiceResult<Activity> {
        let mut uow = self.store.read(deadline).await?;
        let activity = crate::access::visible_activity(&mut uow, viewer, id).await?;
        if activity.track.is_none() {
            return Err(ServiceError::NotFound);
        }
        Ok(activity)
    }

    /// The streams of `keys` (default: every key the track has) at `resolution`; keys
    /// without a value at any shown point are left out.
    pub async fn streams(
        &self,
        deadline: Deadline,
        viewer: UserId,
        id: ActivityId,
        keys: Option<Vec<StreamKey>>,
        resolution: Resolution,
    ) -> ServiceResult<Vec<(StreamKey, Column)>> {
        let activity = self.recorded(deadline, viewer, id).await?;
        let streams = self.views.points(deadline, &activity, viewer).await?;
        let keys = keys.unwrap_or_else(|| StreamKey::ALL.to_vec());
        let first = streams.first_time_ns();
        let indices = resolution.indices(streams.points.len());
        let p = &streams.points;
        let mut out = Vec::new();
        for key in StreamKey::ALL.into_iter().filter(|k| keys.contains(k)) {
            if !indices.iter().any(|&i| p[i].has(key)) {
                continue;
            }
            let column = match key {
                StreamKey::Time => Column::Time(
                    indices.iter().map(|&i| p[i].time_ns.zip(first).map(|(t, f)| (t - f) as f64 / 1e9)).collect(),
                ),
                StreamKey::Latlng => {
                    Column::Latlng(indices.iter().map(|&i| p[i].position.map(|(a, b)| [a, b])).collect())
                }
                StreamKey::Altitude => Column::Altitude(indices.iter().map(|&i| p[i].elevation).collect()),
                StreamKey::Distance => Column::Distance(indices.iter().map(|&i| streams.distance[i]).collect()),
                StreamKey::Heartrate => Column::Heartrate(indices.iter().map(|&i| p[i].heart_rate).collect()),
                StreamKey::Cadence => Column::Cadence(indices.iter().map(|&i| p[i].cadence).collect()),
                StreamKey::Power => Column::Power(indices.iter().map(|&i| p[i].power).collect()),
            };
            out.push((key, column));
        }
        Ok(out)
    }

    /// The track as GPX 1.1, as `viewer` may see it; with a file name for it.
    pub async fn export_gpx(&self, deadline: Deadline, viewer: UserId, id: ActivityId) -> ServiceResult<String> {
        let activity = self.recorded(deadline, viewer, id).await?;
        let streams = self.views.points(deadline, &activity, viewer).await?;
        let (title, sport) = (activity.title.as_str().to_owned(), activity.sport.as_str());
        self.views.cpu.run(move || to_gpx(&streams, &title, sport)).await
    }

    /// The file as it was uploaded, with its name: the owner's alone.
    pub async fn original(&self, deadline: Deadline, owner: UserId, id: ActivityId) -> ServiceResult<(String, Bytes)> {
        let file = {
            let mut uow = self.store.read(deadline).await?;
            let activity = stride_repository::ActivityRepo::activity_by_id(&mut uow, id).await?;
            if activity.is_none_or(|a| a.user_id != owner) {
                return Err(ServiceError::NotFound);
            }
            uow.track_file(id).await?.ok_or(ServiceError::NotFound)?
        };
        let key = BlobKey::parse(&file.blob_key).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok((file.name, self.views.storage.get(&key, deadline).await?))
    }

    pub async fn add_zone(
        &self,
        deadline: Deadline,
        owner: UserId,
        lat: f64,
        lon: f64,
        radius_m: f64,
    ) -> ServiceResult<PrivacyZone> {
        let invalid = |field, message: &str| ServiceError::Invalid { field, message: message.to_owned() };
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(invalid("lat", "must be a latitude from -90 to 90"));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(invalid("lon", "must be a longitude from -180 to 180"));
        }
        if !(PrivacyZone::MIN_RADIUS_M..=PrivacyZone::MAX_RADIUS_M).contains(&radius_m) {
            return Err(invalid("radius_m", "must be from 200 to 2000 metres"));
        }
        let zone = PrivacyZone {
            id: ZoneId::new(),
            user_id: owner,
            lat,
            lon,
            radius_m,
            created_at: now_micros(self.clock.now()),
        };
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            // The owner's row orders concurrent adds: the count cannot be passed by two at once.
            stride_repository::UserRepo::user_by_id_for_update(&mut uow, owner).await?;
            if uow.zones_of(owner).await?.len() >= PrivacyZone::MAX_PER_USER {
                return Err(ServiceError::Conflict {
                    code: "limit_reached",
                    message: format!("at most {} privacy zones", PrivacyZone::MAX_PER_USER),
                });
            }
            uow.insert_zone(&zone).await?;
            Ok(zone)
        }
        .await;
        finish(uow, outcome).await
    }

    pub async fn zones(&self, deadline: Deadline, owner: UserId) -> ServiceResult<Vec<PrivacyZone>> {
        Ok(self.store.read(deadline).await?.zones_of(owner).await?)
    }

    pub async fn delete_zone(&self, deadline: Deadline, owner: UserId, id: ZoneId) -> ServiceResult<()> {
        let mut uow = self.store.write(deadline).await?;
        let removed = uow.delete_zone(owner, id).await.map_err(ServiceError::from);
        match finish(uow, removed).await? {
            true => Ok(()),
            false => Err(ServiceError::NotFound),
        }
    }

    pub fn views(&self) -> &TrackViews<S> {
        &self.views
    }
}

fn now_micros(now: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(now, 6)
}
