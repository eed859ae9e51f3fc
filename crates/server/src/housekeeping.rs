//! The server's own periodic work, started with serving and joined before the pools close.
//! Today: purging expired sessions and idempotency keys (the durable-jobs runner will take this
//! over as a periodic job).

use std::time::Duration;

use futures::future::BoxFuture;
use stride_repository::Store;
use stride_services::{Deadline, MaintenanceService, Purged};
use tokio_util::sync::CancellationToken;

/// Built at launch, while the store's type is known; started with a token that stops it.
pub(crate) type Housekeeping = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// The longest one purge may take; a purge cut short resumes at the next tick.
const PURGE_BUDGET: Duration = Duration::from_secs(30);

/// Purges expired sessions and idempotency keys every `every` until `stop`, starting at once.
/// A purge under way when `stop` comes is dropped, which rolls back its current batch.
pub(crate) async fn purge_periodically<S: Store>(
    maintenance: MaintenanceService<S>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            () = stop.cancelled() => break,
            purged = maintenance.purge_expired(Deadline::after(PURGE_BUDGET)) => match purged {
                Ok(purged) if purged != Purged::default() => {
                    tracing::info!(sessions = purged.sessions, idempotency_keys = purged.idempotency_keys, "purged expired rows");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed; retrying at the next interval"),
            },
        }
    }
}
