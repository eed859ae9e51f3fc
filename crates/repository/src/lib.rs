//! The persistence layer: what Stride remembers, behind traits the services are generic over.
//!
//! It sits between `domain` (whose types it stores) and `services` (which compose its units of
//! work). Two backends implement the same traits with the same SQL text — SQLite for the
//! one-binary laptop install and PostgreSQL for scaled-out deployments — and one contract test
//! suite (`tests/contract.rs`) runs against both.
//!
//! Every database interaction happens inside a [`UnitOfWork`]: one transaction on one pooled
//! connection, bounded by the caller's [`Deadline`](stride_concurrency::Deadline). A unit of work
//! that is dropped before [`UnitOfWork::commit`] — because the request was cancelled or timed
//! out — rolls back, and its connection is closed instead of being returned to the pool, so a
//! half-read protocol stream or a half-open transaction can never leak into the next request.
//!
//! Architecture Invariant: `sqlx` types never appear in this crate's public API; callers see
//! domain types and [`RepoError`].

mod activities;
mod blobs;
mod codec;
mod config;
mod dialect;
mod disk_io;
mod error;
#[cfg(feature = "testing")]
mod faulty_blobs;
mod idempotency;
mod import_rows;
mod imports;
mod jobs;
mod limits;
#[cfg(feature = "mocks")]
pub mod mocks;
mod photos;
mod postgres;
mod records;
#[cfg(feature = "s3")]
mod s3;
#[cfg(all(feature = "s3", feature = "testing"))]
mod s3_testing;
#[cfg(feature = "testing")]
mod scans;
mod sessions;
mod social;
mod sqlite;
mod statements;
mod stats;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod uow;
mod users;
mod weather;
mod weather_api;
mod zones;

pub use activities::ActivityRepo;
#[cfg(feature = "testing")]
pub use blobs::contract as blob_contract;
pub use blobs::{BlobError, BlobKey, BlobResult, BlobStore, DynBlobStore, LocalBlobStore, SharedBlobStore};
pub use config::{Backend, StoreConfig, redact};
pub use error::{RepoError, RepoResult};
#[cfg(feature = "testing")]
pub use faulty_blobs::FaultyBlobStore;
pub use idempotency::{IdempotencyRecord, IdempotencyRepo, IdempotencyScope};
pub use imports::{ImportRepo, ItemOutcome, TrackFile};
pub use jobs::{JobRepo, QueueDepth, RESCUE_NOTE};
pub use limits::LimitRepo;
pub use photos::{PhotoRepo, PhotoSelection, PhotoUploadRecord};
pub use postgres::PgStore;
pub use records::RecordsRepo;
#[cfg(feature = "s3")]
pub use s3::{S3BlobStore, S3Config};
#[cfg(all(feature = "s3", feature = "testing"))]
pub use s3_testing::S3TestServer;
#[cfg(feature = "testing")]
pub use scans::StatsScans;
pub use sessions::{NewSession, SessionRepo, SessionUser};
pub use social::{FeedRepo, MAX_FEED_CHUNK, ProfileRepo, RelationshipRepo};
pub use sqlite::SqliteStore;
pub use stats::{StatsRepo, StatsSubject, StatsTotals};
pub use store::{PoolStats, Store, UnitOfWork};
#[cfg(feature = "testing")]
pub use testing::JobsFloor;
pub use tls::install_ring_provider;
pub use uow::SqlxUnitOfWork;
pub use users::{Credentials, UserRepo};
pub use weather::WeatherRepo;
pub use weather_api::{OpenMeteo, WeatherApi, WeatherApiError};
pub use zones::ZoneRepo;
