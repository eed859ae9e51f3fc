//! An archive's import: the zip stored as one blob before the commit that records the import
//! and its job (202 as soon as it is stored, `total` unknown), then opened by each attempt of
//! the job: read in place from the disk store, or copied from S3 to a scratch file first (a
//! zip's directory is at its end, and entries are read by offset, which a download cannot do).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use stride_concurrency::Deadline;
use stride_domain::{
    Import, ImportId, ImportItem, ImportState, ItemState, Lease, Problem, UserId, import_archive_blob, import_item_blob,
};
use stride_repository::{BlobKey, ImportRepo, Store};
use stride_tracks::{Archive, ArchiveError, PlannedItem, Work};
use tokio_util::sync::CancellationToken;

use super::pipeline::{Attempt, Ended};
use super::recorded::Defaults;
use super::run::Stop;
use super::{ImportCreated, ImportOptions, ImportService};
use crate::idempotency::IdempotencyKey;
use crate::jobs::{JobOutcome, complete_in};
use crate::uow::finish;
use crate::{ServiceError, ServiceResult};

/// A file read by offset: clones share the handle and each keeps its own position, so entries
/// inflate on several threads at once without reopening the archive or re-reading its
/// directory.
#[derive(Clone)]
pub(crate) struct SharedFile {
    file: Arc<File>,
    len: u64,
    position: u64,
}

impl SharedFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self { file: Arc::new(file), len, position: 0 })
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read_at(buf, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| std::io::Error::other("seek before the start of the archive"))?;
        Ok(self.position)
    }
}

/// An attempt's open archive, and the scratch copy it reads from (removed when dropped).
pub(crate) struct OpenArchive {
    pub(crate) archive: Archive<SharedFile>,
    _scratch: Option<tempfile::TempPath>,
}

/// Why an archive could not be opened: permanent ones fail the import, others retry.
pub(crate) enum OpenError {
    Permanent(Problem),
    Transient(ServiceError),
}

impl<S: Store> ImportService<S> {
    /// Stores the archive spooled at `path` and records its import and job in one commit.
    pub async fn create_archive(
        &self,
        deadline: Deadline,
        owner: UserId,
        path: &Path,
        options: ImportOptions,
        key: Option<IdempotencyKey>,
    ) -> ServiceResult<ImportCreated> {
        if let Some(key) = &key
            && let Some(first) = self.replay(deadline, owner, key).await?
        {
            return Ok(ImportCreated::Replayed(first));
        }
        self.check_room(deadline, owner).await?;
        let id = ImportId::new();
        let archive_key = import_archive_blob(id);
        let import = self.new_import(id, owner, options, None, Some(archive_key.clone()));
        let blob = BlobKey::parse(&archive_key).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.storage.put_file(&blob, path, deadline).await?;
        self.record_or_clean(deadline, &import, &[], &[blob], key).await
    }

    /// Opens the import's archive for one attempt.
    pub(crate) async fn open_archive(&self, import: &Import, deadline: Deadline) -> Result<OpenArchive, OpenError> {
        let missing = || OpenError::Permanent(Problem::new("invalid_archive", "the archive is not stored"));
        let key = import.archive_key.as_deref().ok_or_else(missing)?;
        let key = BlobKey::parse(key).map_err(|e| OpenError::Transient(ServiceError::Internal(e.to_string())))?;
        let (path, scratch) = match self.storage.local_path(&key) {
            Some(path) => (path, None),
            None => {
                let scratch = tempfile::NamedTempFile::new_in(&self.config.spool_dir)
                    .map_err(|e| OpenError::Transient(ServiceError::Internal(format!("scratch file: {e}"))))?
                    .into_temp_path();
                match self.storage.get_to_file(&key, &scratch, deadline).await {
                    Ok(()) => {}
                    Err(ServiceError::NotFound) => return Err(missing()),
                    Err(error) => return Err(OpenError::Transient(error)),
                }
                (scratch.to_path_buf(), Some(scratch))
            }
        };
        let opened = tokio::task::spawn_blocking(move || match SharedFile::open(&path) {
            Ok(file) => Ok(Archive::open(file)),
            Err(error) => Err(error),
        })
        .await
        .map_err(|e| OpenError::Transient(ServiceError::Internal(format!("opening the archive: {e}"))))?;
        match opened {
            Ok(Ok(archive)) => Ok(OpenArchive { archive, _scratch: scratch }),
            Ok(Err(error)) => Err(OpenError::Permanent(archive_problem(&error))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(missing()),
            Err(error) => Err(OpenError::Transient(ServiceError::Internal(format!("opening the archive: {error}")))),
        }
    }

    /// After an archive's import ended: its zip is no longer needed (gc removes it if this
    /// fails, since only an active import names it).
    pub(crate) async fn drop_archive(&self, import: &Import) {
        if let Some(key) = import.archive_key.as_deref().and_then(|key| BlobKey::parse(key).ok()) {
            self.storage
                .delete_all(std::slice::from_ref(&key), Deadline::after(std::time::Duration::from_secs(60)))
                .await;
        }
    }
}

pub(crate) fn archive_problem(error: &ArchiveError) -> Problem {
    Problem::new(error.code(), error.to_string())
}

impl<S: Store> ImportService<S> {
    /// One attempt of an archive's import: the plan recorded once (the items and `total`),
    /// then the items still queued through the pipeline.
    pub(super) async fn run_archive(
        &self,
        lease: &Lease,
        deadline: Deadline,
        lost: &CancellationToken,
        import: Import,
        defaults: Defaults,
    ) -> Result<JobOutcome, Stop> {
        let opened = match self.open_archive(&import, deadline).await {
            Ok(opened) => opened,
            Err(OpenError::Permanent(problem)) => return self.fail_archive(lease, &import, problem).await,
            Err(OpenError::Transient(error)) => return Err(Stop::Failed(error)),
        };
        let mut reader = opened.archive.clone();
        let plan = tokio::task::spawn_blocking(move || reader.plan())
            .await
            .map_err(|e| ServiceError::Internal(format!("reading the archive's directory: {e}")))?;
        let plan = match plan {
            Ok(plan) => plan,
            Err(error) => return self.fail_archive(lease, &import, archive_problem(&error)).await,
        };
        match import.total {
            None => {
                let items: Vec<ImportItem> =
                    plan.iter().enumerate().map(|(index, planned)| planned_item(&import, index, planned)).collect();
                let mut uow = self.fenced(lease).await?;
                let planned = uow.plan_import(import.id, &items).await.map_err(ServiceError::from);
                finish(uow, planned).await?;
            }
            Some(total) if total as usize != plan.len() => {
                let why = format!("the archive now plans {} items, not the {total} recorded", plan.len());
                return self.fail_archive(lease, &import, Problem::new("invalid_archive", why)).await;
            }
            Some(_) => {}
        }
        // The plan, names dropped (the items hold them): what each index is, nothing more.
        let works: Vec<Option<Work>> = plan.into_iter().map(|planned| Some(planned.work)).collect();
        let queued = self.queued_work(import.id, works, deadline);
        let attempt = Arc::new(Attempt::new(
            self.clone(),
            lease.clone(),
            import.clone(),
            defaults,
            opened.archive.clone(),
            deadline,
        ));
        let ended = match attempt.run(queued, lost).await {
            Ok(ended) => ended,
            Err(Stop::Archive(problem)) => return self.fail_archive(lease, &import, problem).await,
            Err(other) => return Err(other),
        };
        drop(opened);
        if let Ended::Stopped = ended {
            // Cancelled: done items stay, the rest were cancelled with the import.
            self.drop_archive(&import).await;
            return Ok(JobOutcome::Done);
        }
        let now = self.clock.now();
        let mut uow = self.fenced(lease).await?;
        let done = async {
            uow.finish_import(import.id, ImportState::Done, None, now).await?;
            complete_in(&mut uow, lease, now).await
        }
        .await;
        finish(uow, done).await?;
        self.drop_archive(&import).await;
        Ok(JobOutcome::Committed)
    }

    /// Ends the import as failed for a reason of the whole archive; its queued items fail with
    /// it, imported ones stay, and the job completes (a retry would fail the same way).
    async fn fail_archive(&self, lease: &Lease, import: &Import, problem: Problem) -> Result<JobOutcome, Stop> {
        let now = self.clock.now();
        let mut uow = self.fenced(lease).await?;
        let failed = async {
            if uow.finish_import(import.id, ImportState::Failed, Some(&problem), now).await? {
                uow.fail_queued_items(import.id, &problem).await?;
            }
            complete_in(&mut uow, lease, now).await
        }
        .await;
        finish(uow, failed).await?;
        self.drop_archive(import).await;
        Ok(JobOutcome::Committed)
    }
}

impl<S: Store> ImportService<S> {
    /// The items still queued with their work, read a page at a time as the pipeline takes
    /// them: however many items an archive holds, a hundred of them are in memory. A read that
    /// fails ends the stream with its error, which the pipeline takes as its first failure.
    fn queued_work(
        &self,
        import: ImportId,
        works: Vec<Option<Work>>,
        deadline: Deadline,
    ) -> impl futures::Stream<Item = Result<(ImportItem, Work), Stop>> + Send + 'static {
        const PAGE: u32 = 100;
        let store = self.store.clone();
        let pages = futures::stream::unfold(Some((0u32, works)), move |state| {
            let store = store.clone();
            async move {
                let (from, mut works) = state?;
                let read = async { store.read(deadline).await?.import_items(import, from, PAGE).await }.await;
                let items = match read {
                    Ok(items) => items,
                    Err(error) => return Some((vec![Err(Stop::Failed(error.into()))], None)),
                };
                let last = items.last()?.index;
                let page: Vec<_> = items
                    .into_iter()
                    .filter(|item| item.state == ItemState::Queued)
                    .filter_map(|item| {
                        works.get_mut(item.index as usize).and_then(Option::take).map(|work| Ok((item, work)))
                    })
                    .collect();
                Some((page, Some((last + 1, works))))
            }
        });
        futures::StreamExt::flat_map(pages, futures::stream::iter)
    }
}

fn planned_item(import: &Import, index: usize, planned: &PlannedItem) -> ImportItem {
    ImportItem {
        import_id: import.id,
        index: index as u32,
        name: planned.name.clone(),
        blob_key: import_item_blob(import.id, index as u32),
        bytes: planned.declared_bytes,
        state: ItemState::Queued,
        activity_id: None,
        error: None,
        warnings: Vec::new(),
    }
}
