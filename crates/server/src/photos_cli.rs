//! `stride photos reprocess` and `stride photos gc`: batch work on the photos of a running
//! deployment, from the same configuration as the server (same database, same blob store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use stride_repository::Store;
use stride_services::photos::{ReprocessEvent, ReprocessOptions, ReprocessSummary};
use stride_services::{CpuPool, Deadline, PhotoSelection, PhotoService, SystemClock};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::app::{OnStore, blob_store, with_store};

/// What `stride photos reprocess` was asked to do.
#[derive(Debug, Clone)]
pub struct ReprocessRequest {
    pub user: Option<String>,
    pub activity: Option<String>,
    pub concurrency: usize,
    pub dry_run: bool,
}

/// Runs a re-processing pass; the summary, or an error if any photo failed.
pub async fn reprocess(
    config: Config,
    request: ReprocessRequest,
    stop: CancellationToken,
) -> anyhow::Result<ReprocessSummary> {
    with_store(&config.clone(), Reprocess { config, request, stop }).await
}

/// Deletes the blobs no photo names (or lists them, with `dry_run`); how many.
pub async fn gc(config: Config, dry_run: bool) -> anyhow::Result<usize> {
    with_store(&config.clone(), Gc { config, dry_run }).await
}

struct Reprocess {
    config: Config,
    request: ReprocessRequest,
    stop: CancellationToken,
}

impl OnStore for Reprocess {
    type Output = ReprocessSummary;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<ReprocessSummary> {
        reprocess_on(store, self.config, self.request, self.stop).await
    }
}

struct Gc {
    config: Config,
    dry_run: bool,
}

impl OnStore for Gc {
    type Output = usize;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<usize> {
        gc_on(store, self.config, self.dry_run).await
    }
}

async fn service<S: Store>(store: &S, config: &Config) -> anyhow::Result<PhotoService<S>> {
    let blobs = blob_store(config).await?;
    Ok(PhotoService::new(store.clone(), blobs, CpuPool::per_core(), Arc::new(SystemClock), config.photos()))
}

async fn reprocess_on<S: Store>(
    store: S,
    config: Config,
    request: ReprocessRequest,
    stop: CancellationToken,
) -> anyhow::Result<ReprocessSummary> {
    let photos = service(&store, &config).await?;
    let deadline = || Deadline::after(config.db_timeout());
    let selection = match (&request.user, &request.activity) {
        (Some(name), None) => PhotoSelection::User(
            photos.user_named(deadline(), name).await.map_err(|e| anyhow::anyhow!("--user {name}: {e}"))?,
        ),
        (None, Some(id)) => PhotoSelection::Activity(
            id.parse().map_err(|_| anyhow::anyhow!("--activity {id:?} is not an activity id"))?,
        ),
        (None, None) => PhotoSelection::All,
        (Some(_), Some(_)) => anyhow::bail!("give one of --all, --user or --activity"),
    };
    let options = ReprocessOptions {
        selection,
        concurrency: request.concurrency.max(1),
        dry_run: request.dry_run,
        step_timeout: config.upload_timeout(),
    };
    let progress = Progress::new();
    let report = progress.clone();
    let summary = photos
        .reprocess(options, stop, move |event| report.on(event))
        .await
        .map_err(|e| anyhow::anyhow!("re-processing failed: {e}"))?;
    progress.finish();
    store.close().await;
    print_summary(&summary, request.dry_run);
    if let Some(outage) = &summary.outage {
        anyhow::bail!("stopped by an outage ({outage}); {} photos left for the next run", summary.remaining);
    }
    if !summary.failed.is_empty() {
        anyhow::bail!("{} photos failed to re-process", summary.failed.len());
    }
    Ok(summary)
}

async fn gc_on<S: Store>(store: S, config: Config, dry_run: bool) -> anyhow::Result<usize> {
    let photos = service(&store, &config).await?;
    let (seen, garbage) = photos
        .collect_garbage(Deadline::after(Duration::from_secs(600)), dry_run)
        .await
        .map_err(|e| anyhow::anyhow!("garbage collection failed: {e}"))?;
    store.close().await;
    for key in &garbage {
        println!("{} {key}", if dry_run { "would delete" } else { "deleted" });
    }
    println!("{seen} photo blobs looked at; {} {}", garbage.len(), if dry_run { "to delete" } else { "deleted" });
    Ok(garbage.len())
}

fn print_summary(summary: &ReprocessSummary, dry_run: bool) {
    if dry_run {
        println!("dry run: {} photos to re-process, {} up to date", summary.remaining, summary.skipped);
        return;
    }
    println!(
        "re-processed {}, skipped {}, failed {}{}",
        summary.processed,
        summary.skipped,
        summary.failed.len(),
        if summary.stopped {
            format!(" (stopped; {} left for the next run)", summary.remaining)
        } else {
            String::new()
        }
    );
    for (photo, why) in &summary.failed {
        println!("  failed {photo}: {why}");
    }
}

/// A progress bar on a terminal (done/total, rate, ETA); a log line every 5 s otherwise.
#[derive(Clone)]
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    log: Arc<std::sync::Mutex<LogState>>,
}

struct LogState {
    total: u64,
    done: u64,
    failed: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new() -> Self {
        let bar = crate::progress::terminal_bar(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} photos · {per_sec} · ETA {eta}",
        );
        let now = Instant::now();
        let log = LogState { total: 0, done: 0, failed: 0, started: now, last_line: now };
        Self { bar, log: Arc::new(std::sync::Mutex::new(log)) }
    }

    fn on(&self, event: ReprocessEvent) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            ReprocessEvent::Planned { to_process, up_to_date } => {
                log.total = to_process;
                if let Some(bar) = &self.bar {
                    bar.set_length(to_process);
                }
                tracing::info!(to_process, up_to_date, "re-processing photos");
            }
            ReprocessEvent::Finished { photo, outcome } => {
                log.done += 1;
                if let Err(why) = &outcome {
                    log.failed += 1;
                    tracing::warn!(%photo, %why, "re-processing a photo failed");
                }
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                } else if log.last_line.elapsed() >= Duration::from_secs(5) || log.done == log.total {
                    log.last_line = Instant::now();
                    let rate = log.done as f64 / log.started.elapsed().as_secs_f64().max(0.001);
                    tracing::info!(
                        done = log.done,
                        total = log.total,
                        failed = log.failed,
                        rate = format!("{rate:.1}/s"),
                        "progress"
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
