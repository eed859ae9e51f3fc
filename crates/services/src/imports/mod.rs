//! Imports: track files uploaded together, each an item of one durable `imports.run` job.
//!
//! The files are stored as blobs first; then one transaction records the import, its items
//! and its job (and the idempotency key), so an acknowledged import always has both its files
//! and a job that will process them. The job ([`run`]) takes the items in file order, parses
//! each on the bounded CPU pool, and commits each item's activity with the item's new state,
//! fenced by the attempt: a process killed mid-import is rescued once its lease expires, and
//! the next attempt starts at the first item still queued. No file is imported twice.

mod archive;
mod commit;
mod entry;
mod gc;
mod media;
mod pipeline;
mod recorded;
mod rows;
mod run;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use stride_concurrency::Deadline;
use stride_domain::{
    Import, ImportId, ImportItem, ImportState, ItemState, NewJob, Sport, UserId, Visibility, import_item_blob,
};
use stride_repository::{BlobKey, ImportRepo, JobRepo, RepoError, Store, UnitOfWork};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity_write::ActivityWrites;
use crate::idempotency::{IDEMPOTENCY_WINDOW, IdempotencyKey};
use crate::photos::PhotoService;
use crate::photos::storage::Storage;
use crate::uow::finish;
use crate::{Clock, CpuPool, ServiceError, ServiceResult};

/// The job kind that processes an import.
pub const IMPORT_KIND: &str = "imports.run";

/// Photos one activity takes from an archive's `Media`; the rest are warnings.
const MAX_PHOTOS_PER_ACTIVITY: usize = 10;

/// The limits of imports; README "Imports" documents each.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// Files per import.
    pub max_files: usize,
    /// Imports a user may have queued or running at once (429 past it).
    pub max_active: u32,
    /// Attempts of an import job; each resumes where the last stopped.
    pub attempts: u32,
    /// Items of an archive each stage of its pipeline takes at once, and the CPU slots its
    /// inflating and parsing share (default: one per core, plus one; see [`default_workers`]).
    pub workers: usize,
    /// The largest archive accepted, as sent (`STRIDE_IMPORT_MAX_ARCHIVE_BYTES`, 413 past it).
    pub max_archive_bytes: u64,
    /// Where an archive is spooled as it arrives, and copied from S3 to be read: on disk
    /// (the data directory's `spool/`), never a memory-backed `/tmp`.
    pub spool_dir: std::path::PathBuf,
}

/// One slot per core, plus one. An item's CPU work moves between threads (a task takes a slot,
/// a blocking thread inflates, a CPU-pool thread parses) and waits now and then while holding
/// its slot (a thread to wake, a page to fault in); with exactly one slot per core each of those
/// moments leaves a core idle, with one more an item is ready to fill it. Measured on 2 cores,
/// same archive, same run: 3 slots import 1,000 entries 12–16 % faster than 2 (docs/benchmarks.md).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from) + 1
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            max_files: 20,
            max_active: 3,
            attempts: 5,
            workers: default_workers(),
            max_archive_bytes: 1 << 30,
            spool_dir: std::env::temp_dir(),
        }
    }
}

/// One file of an upload.
#[derive(Debug, Clone)]
pub struct ImportFile {
    pub name: String,
    pub bytes: Bytes,
}

/// What the form said besides the files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// For files that name no sport.
    pub sport: Option<Sport>,
    pub visibility: Visibility,
}

/// The outcome of an idempotent create.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportCreated {
    New(Import),
    /// A retry with the same key: the first import.
    Replayed(Import),
}

impl ImportCreated {
    pub fn import(&self) -> &Import {
        match self {
            ImportCreated::New(import) | ImportCreated::Replayed(import) => import,
        }
    }
}

#[derive(Clone)]
pub struct ImportService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    storage: Storage,
    cpu: CpuPool,
    writes: ActivityWrites,
    photos: PhotoService<S>,
    config: ImportConfig,
}

impl<S: Store> ImportService<S> {
    pub(crate) fn new(
        store: S,
        clock: Arc<dyn Clock>,
        storage: Storage,
        cpu: CpuPool,
        writes: ActivityWrites,
        photos: PhotoService<S>,
        config: ImportConfig,
    ) -> Self {
        Self { store, clock, storage, cpu, writes, photos, config }
    }

    pub fn config(&self) -> &ImportConfig {
        &self.config
    }

    /// Refuses a user who has `max_active` imports queued or running (429), before the
    /// upload is read; [`ImportService::create`] checks again.
    pub async fn check_room(&self, deadline: Deadline, owner: UserId) -> ServiceResult<()> {
        let mut uow = self.store.read(deadline).await?;
        let active = uow.active_imports(owner).await?;
        if active >= self.config.max_active {
            return Err(ServiceError::RateLimited {
                retry_after: Duration::from_secs(10),
                message: format!("{active} imports are queued or running; at most {} at once", self.config.max_active),
            });
        }
        Ok(())
    }

    /// A retry's answer: the import the first request with this key made, if any.
    pub async fn replay(
        &self,
        deadline: Deadline,
        owner: UserId,
        key: &IdempotencyKey,
    ) -> ServiceResult<Option<Import>> {
        let not_before = self.clock.now() - IDEMPOTENCY_WINDOW;
        let mut uow = self.store.read(deadline).await?;
        match uow.find_import_key(owner, key.as_str(), not_before).await? {
            Some(id) => Ok(uow.import_by_id(id).await?),
            None => Ok(None),
        }
    }

    /// Stores the files, then records the import and enqueues its job in one commit.
    pub async fn create(
        &self,
        deadline: Deadline,
        owner: UserId,
        files: Vec<ImportFile>,
        options: ImportOptions,
        key: Option<IdempotencyKey>,
    ) -> ServiceResult<ImportCreated> {
        if let Some(key) = &key
            && let Some(first) = self.replay(deadline, owner, key).await?
        {
            return Ok(ImportCreated::Replayed(first));
        }
        if files.is_empty() || files.len() > self.config.max_files {
            return Err(ServiceError::Invalid {
                field: "file",
                message: format!("send 1 to {} files as `file` parts", self.config.max_files),
            });
        }
        for file in &files {
            if stride_tracks::detect(&file.bytes).is_none() {
                return Err(ServiceError::UnsupportedMedia(format!("{}: not a GPX, TCX or FIT file", file.name)));
            }
        }
        self.check_room(deadline, owner).await?;
        let import = self.new_import(ImportId::new(), owner, options, Some(files.len() as u32), None);
        let items = self.store_files(deadline, import.id, files).await?;
        let stored: Vec<BlobKey> = items.iter().filter_map(|i| BlobKey::parse(&i.blob_key).ok()).collect();
        self.record_or_clean(deadline, &import, &items, &stored, key).await
    }

    /// Records an import whose files are stored; when nothing will name them (a lost race for
    /// the key, a failed commit whose outcome is known) they go, and after an unknown outcome
    /// they stay for gc.
    async fn record_or_clean(
        &self,
        deadline: Deadline,
        import: &Import,
        items: &[ImportItem],
        stored: &[BlobKey],
        key: Option<IdempotencyKey>,
    ) -> ServiceResult<ImportCreated> {
        let outcome = self.record(deadline, import, items, key.as_ref(), import.created_at).await;
        match outcome {
            Ok(Some(created)) => Ok(created),
            Ok(None) | Err(_) => {
                if !matches!(outcome, Err(ServiceError::Timeout | ServiceError::Unavailable(_))) {
                    self.storage.delete_all(stored, deadline).await;
                }
                match outcome {
                    Ok(_) => {
                        let key = key.ok_or_else(|| ServiceError::Internal("no key, yet no import".into()))?;
                        let first = self.replay(deadline, import.user_id, &key).await?;
                        first.map(ImportCreated::Replayed).ok_or_else(|| ServiceError::Internal("key vanished".into()))
                    }
                    Err(error) => Err(error),
                }
            }
        }
    }

    /// A queued import of `owner` recorded now: files (`total` known) or an archive (its key).
    pub(super) fn new_import(
        &self,
        id: ImportId,
        owner: UserId,
        options: ImportOptions,
        total: Option<u32>,
        archive_key: Option<String>,
    ) -> Import {
        Import {
            id,
            user_id: owner,
            state: ImportState::Queued,
            sport: options.sport.map(|s| s.as_str().to_owned()),
            visibility: options.visibility.as_str().to_owned(),
            total,
            imported: 0,
            duplicate: 0,
            failed: 0,
            cancelled: 0,
            error: None,
            created_at: self.clock.now(),
            finished_at: None,
            archive_key,
            rate_per_s: None,
        }
    }

    async fn store_files(
        &self,
        deadline: Deadline,
        import: ImportId,
        files: Vec<ImportFile>,
    ) -> ServiceResult<Vec<ImportItem>> {
        let (cancel, attempts) = (CancellationToken::new(), TaskTracker::new());
        let mut items = Vec::with_capacity(files.len());
        for (index, file) in files.into_iter().enumerate() {
            let blob_key = import_item_blob(import, index as u32);
            let key = BlobKey::parse(&blob_key).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let bytes = file.bytes.len() as u64;
            if let Err(error) =
                self.storage.put(&key, file.bytes, "application/octet-stream", deadline, &cancel, &attempts).await
            {
                let stored: Vec<BlobKey> =
                    items.iter().filter_map(|i: &ImportItem| BlobKey::parse(&i.blob_key).ok()).collect();
                attempts.close();
                attempts.wait().await;
                self.storage.delete_all(&stored, deadline).await;
                return Err(error);
            }
            items.push(ImportItem {
                import_id: import,
                index: index as u32,
                name: file.name,
                blob_key,
                bytes,
                state: ItemState::Queued,
                activity_id: None,
                error: None,
                warnings: Vec::new(),
            });
        }
        Ok(items)
    }

    /// The one commit of a new import; `None` when a concurrent request with the same key won.
    async fn record(
        &self,
        deadline: Deadline,
        import: &Import,
        items: &[ImportItem],
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
    ) -> ServiceResult<Option<ImportCreated>> {
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            // The import first: its key refers to it. A key another request recorded since the
            // replay check conflicts, and this whole unit of work rolls back.
            uow.insert_import(import, items).await?;
            if let Some(key) = key {
                match uow
                    .record_import_key(import.user_id, key.as_str(), import.id, now - IDEMPOTENCY_WINDOW, now)
                    .await
                {
                    Ok(()) => {}
                    Err(RepoError::Conflict { .. }) => return Ok(None),
                    Err(other) => return Err(other.into()),
                }
            }
            let payload = serde_json::json!({ "import_id": import.id }).to_string();
            let mut job = NewJob::due(IMPORT_KIND, payload, self.config.attempts, now);
            job.unique_key = Some(format!("import:{}", import.id));
            uow.enqueue(&job, now).await?;
            Ok(Some(ImportCreated::New(import.clone())))
        }
        .await;
        match outcome {
            Ok(None) => {
                uow.rollback().await?;
                Ok(None)
            }
            other => finish(uow, other).await,
        }
    }

    /// The owner's import (`NotFound` for anyone else).
    pub async fn get(&self, deadline: Deadline, owner: UserId, id: ImportId) -> ServiceResult<Import> {
        let mut uow = self.store.read(deadline).await?;
        owned(uow.import_by_id(id).await?, owner)
    }

    /// The owner's imports, newest first.
    pub async fn list(
        &self,
        deadline: Deadline,
        owner: UserId,
        after: Option<(DateTime<Utc>, ImportId)>,
        limit: u32,
    ) -> ServiceResult<Vec<Import>> {
        let mut uow = self.store.read(deadline).await?;
        Ok(uow.list_imports(owner, after, limit).await?)
    }

    /// Items in file order from `from`.
    pub async fn items(
        &self,
        deadline: Deadline,
        owner: UserId,
        id: ImportId,
        from: u32,
        limit: u32,
    ) -> ServiceResult<Vec<ImportItem>> {
        let mut uow = self.store.read(deadline).await?;
        owned(uow.import_by_id(id).await?, owner)?;
        Ok(uow.import_items(id, from, limit).await?)
    }

    /// Stops what has not started; imported items stay. A finished import is left as it is.
    pub async fn cancel(&self, deadline: Deadline, owner: UserId, id: ImportId) -> ServiceResult<Import> {
        let now = self.clock.now();
        let mut uow = self.store.write(deadline).await?;
        let outcome = async {
            owned(uow.import_by_id(id).await?, owner)?;
            uow.cancel_import(id, now).await?;
            owned(uow.import_by_id(id).await?, owner)
        }
        .await;
        finish(uow, outcome).await
    }
}

fn owned(import: Option<Import>, owner: UserId) -> ServiceResult<Import> {
    import.filter(|import| import.user_id == owner).ok_or(ServiceError::NotFound)
}
