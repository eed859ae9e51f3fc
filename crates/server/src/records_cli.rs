//! `stride records rebuild [--user NAME]`: recomputes best efforts from the stored tracks
//! (after an algorithm change, or to check one user's), with a progress bar on a terminal and a
//! log line every 5 s otherwise. Records need nothing more: they are the stored efforts' order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stride_repository::Store;
use stride_services::{Deadline, RebuildProgress, Rebuilt, Stride, SystemClock};

use crate::Config;
use crate::app::{OnStore, blob_store, with_store};
use crate::progress::terminal_bar;

/// Rebuilds; how many activities were rebuilt and how many could not be read (exit status 1).
pub async fn rebuild(config: Config, user: Option<String>) -> anyhow::Result<Rebuilt> {
    let rebuilt = with_store(&config.clone(), Rebuild { config, user }).await?;
    println!("records rebuild: {} activities rebuilt, {} could not be read", rebuilt.rebuilt, rebuilt.failed);
    if rebuilt.failed > 0 {
        anyhow::bail!("{} activities' tracks could not be read (see the log)", rebuilt.failed);
    }
    Ok(rebuilt)
}

struct Rebuild {
    config: Config,
    user: Option<String>,
}

impl OnStore for Rebuild {
    type Output = Rebuilt;

    async fn run<S: Store>(self, store: S) -> anyhow::Result<Rebuilt> {
        let Rebuild { config, user } = self;
        let blobs = blob_store(&config).await?;
        let stride = Stride::new(store.clone(), Arc::new(SystemClock), blobs, config.settings()?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let deadline = Deadline::after(Duration::from_secs(24 * 60 * 60));
        let owner = match &user {
            Some(name) => Some(
                stride.photos.user_named(deadline, name).await.map_err(|e| anyhow::anyhow!("--user {name}: {e}"))?,
            ),
            None => None,
        };
        let total = stride.records.needing_rebuild(deadline, owner, true).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let bar = terminal_bar("{bar:40} {pos}/{len} activities, {per_sec}, {eta} left");
        if let Some(bar) = &bar {
            bar.set_length(total);
        }
        let logged = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let shown = bar.clone();
        let rebuilt = stride
            .records
            .rebuild(deadline, owner, true, move |RebuildProgress { done, failed }| {
                if let Some(bar) = &shown {
                    bar.set_position(done + failed);
                    return;
                }
                let every = started.elapsed().as_secs() / 5;
                if logged.fetch_max(every, Ordering::Relaxed) < every {
                    tracing::info!(done, failed, total, "rebuilding best efforts");
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        store.close().await;
        Ok(rebuilt)
    }
}
