//! `stride import FILE --user NAME`: the import the API runs, for an operator with a file on
//! the server (a Strava export of years, a zip of watch files, or one track file), from the
//! same configuration as the server. The import is recorded and queued exactly as an upload's;
//! this process then runs the import jobs itself (as one more replica would) and shows the
//! progress until the import ends. Stopped with Ctrl-C, the import stays queued or running
//! and a server resumes it.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stride_domain::{Import, ImportId, ImportItem, ItemState, Sport, Visibility};
use stride_repository::Store;
use stride_services::jobs::{JobRunner, RunnerConfig};
use stride_services::{Deadline, ImportCreated, ImportFile, ImportOptions, Stride, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::app::{OnStore, blob_store, with_store};

/// What `stride import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub file: PathBuf,
    pub user: String,
    pub visibility: Option<String>,
    pub sport: Option<String>,
}

/// How an import run from the command line ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub import: Import,
    /// Items that failed, with their errors.
    pub failed: Vec<ImportItem>,
    /// Stopped (Ctrl-C) before the import ended.
    pub interrupted: bool,
}

/// Runs the import to its end and prints a summary; an error (exit status 1) when any item
/// failed or the import did.
pub async fn run(config: Config, request: ImportRequest, stop: CancellationToken) -> anyhow::Result<ImportSummary> {
    let summary = with_store(&config.clone(), ImportTask { config, request, stop }).await?;
    let import = &summary.import;
    println!(
        "import {}: {} — {} imported, {} duplicate, {} failed, {} cancelled of {}",
        import.id,
        import.state,
        import.imported,
        import.duplicate,
        import.failed,
        import.cancelled,
        import.total.map_or_else(|| "?".to_owned(), |total| total.to_string()),
    );
    for item in &summary.failed {
        let error = item.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)).unwrap_or_default();
        println!("  failed #{} {}: {error}", item.index, item.name);
    }
    if let Some(error) = &import.error {
        anyhow::bail!("the import failed: {} ({})", error.message, error.code);
    }
    if summary.interrupted {
        anyhow::bail!("stopped; the import stays {} and a running server finishes it", import.state);
    }
    if !summary.failed.is_empty() {
        anyhow::bail!("{} items failed", summary.failed.len());
    }
    Ok(summary)
}

struct ImportTask {
    config: Config,
    request: ImportRequest,
    stop: CancellationToken,
}

impl OnStore for ImportTask {
    type Output = ImportSummary;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<ImportSummary> {
        let ImportTask { config, request, stop } = self;
        let blobs = blob_store(&config).await?;
        let stride = Stride::new(store.clone(), Arc::new(SystemClock), blobs, config.settings()?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (owner, id) = create(&stride, &config, &request).await?;
        let runner_stop = CancellationToken::new();
        let runner = JobRunner::new(
            store.clone(),
            Arc::new(SystemClock),
            RunnerConfig { grace: config.shutdown_grace(), ..Default::default() },
            vec![stride.imports.registered()],
        );
        let runner = tokio::spawn(runner.run(runner_stop.clone()));
        let outcome = watch(&stride, owner, id, &stop).await;
        runner_stop.cancel();
        let _ = runner.await;
        let (import, interrupted) = outcome?;
        let failed = failed_items(&stride, &import).await?;
        store.close().await;
        Ok(ImportSummary { import, failed, interrupted })
    }
}

async fn create<S: Store>(
    stride: &Stride<S>,
    config: &Config,
    request: &ImportRequest,
) -> anyhow::Result<(stride_domain::UserId, ImportId)> {
    let deadline = Deadline::after(Duration::from_secs(600));
    let owner = stride
        .photos
        .user_named(deadline, &request.user)
        .await
        .map_err(|e| anyhow::anyhow!("--user {}: {e}", request.user))?;
    let mut options = ImportOptions::default();
    if let Some(visibility) = &request.visibility {
        options.visibility =
            visibility.parse::<Visibility>().map_err(|e| anyhow::anyhow!("--visibility {visibility}: {e}"))?;
    }
    if let Some(sport) = &request.sport {
        options.sport = Some(sport.parse::<Sport>().map_err(|e| anyhow::anyhow!("--sport {sport}: {e}"))?);
    }
    let path = &request.file;
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut file| file.read(&mut head))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let created = if stride_services::is_zip(&head[..read]) {
        let size = std::fs::metadata(path)?.len();
        if size > config.imports().max_archive_bytes {
            anyhow::bail!("{}: {size} bytes is over STRIDE_IMPORT_MAX_ARCHIVE_BYTES", path.display());
        }
        stride.imports.create_archive(deadline, owner, path, options, None).await
    } else {
        let bytes = tokio::fs::read(path).await.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let name = path.file_name().map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        stride.imports.create(deadline, owner, vec![ImportFile { name, bytes: bytes.into() }], options, None).await
    };
    let import = match created.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))? {
        ImportCreated::New(import) | ImportCreated::Replayed(import) => import,
    };
    tracing::info!(import = %import.id, file = %path.display(), "import queued");
    Ok((owner, import.id))
}

/// Shows the import's progress until it ends or `stop`; the import as last read, and whether
/// it was interrupted.
async fn watch<S: Store>(
    stride: &Stride<S>,
    owner: stride_domain::UserId,
    id: ImportId,
    stop: &CancellationToken,
) -> anyhow::Result<(Import, bool)> {
    let progress = Progress::new();
    loop {
        let import = stride
            .imports
            .get(Deadline::after(Duration::from_secs(30)), owner, id)
            .await
            .map_err(|e| anyhow::anyhow!("reading the import: {e}"))?;
        progress.show(&import);
        if !import.state.is_active() {
            progress.finish();
            return Ok((import, false));
        }
        tokio::select! {
            () = stop.cancelled() => {
                progress.finish();
                return Ok((import, true));
            }
            // A display refresh, not a synchronisation: the import's state is what ends it.
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

async fn failed_items<S: Store>(stride: &Stride<S>, import: &Import) -> anyhow::Result<Vec<ImportItem>> {
    let mut failed = Vec::new();
    let mut from = 0;
    loop {
        let deadline = Deadline::after(Duration::from_secs(30));
        let items = stride.imports.items(deadline, import.user_id, import.id, from, 1000).await?;
        let Some(last) = items.last() else { break };
        from = last.index + 1;
        failed.extend(items.into_iter().filter(|item| item.state == ItemState::Failed));
    }
    Ok(failed)
}

/// A progress bar with rate and ETA on a terminal; a log line every 5 s otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::cell::Cell<Option<Instant>>,
}

impl Progress {
    fn new() -> Self {
        let bar = crate::progress::terminal_bar("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} items · {msg}");
        Self { bar, last_line: std::cell::Cell::new(None) }
    }

    fn show(&self, import: &Import) {
        let rate = import.rate_per_s.map_or_else(|| "–".to_owned(), |rate| format!("{rate:.1}/s"));
        let eta = import.eta_s().map_or_else(|| "–".to_owned(), |eta| format!("{eta:.0} s"));
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(import.total.unwrap_or(0)));
            bar.set_position(u64::from(import.settled()));
            bar.set_message(format!("{rate} · ETA {eta} · {} failed", import.failed));
            return;
        }
        if self.last_line.get().is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) || !import.state.is_active() {
            self.last_line.set(Some(Instant::now()));
            tracing::info!(
                state = %import.state,
                done = import.settled(),
                total = import.total,
                failed = import.failed,
                rate = %rate,
                eta = %eta,
                "import progress"
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
