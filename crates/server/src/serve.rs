//! The accept loop: what `axum::serve` does, plus the limits an exposed server needs.
//!
//! - **At most `max_connections` open.** A permit is taken *before* `accept`, so past the cap
//!   new connections wait in the kernel's accept backlog (costing us nothing) until one closes.
//! - **A request head must arrive within `header_read_timeout`** (hyper's timer). For HTTP/1.1
//!   that also bounds how long a kept-alive connection may wait for its next request.
//! - **A connection on which no byte moves either way for `idle_timeout` is closed**, e.g. a
//!   client that stopped reading its response.
//! - **Shutdown**: stop accepting, ask every connection to finish its request and close
//!   (`GracefulShutdown`), and when the grace period is over, abort every connection task that
//!   is left. Each connection is a task of one `JoinSet`, so none can outlive the server.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The limits of the accept loop (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// Serves `router` on `listener` until `stop`; then drains within `grace` and aborts the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    grace: Duration,
) {
    let capacity = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        // Finished connections are reaped as we go, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = capacity.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let activity = Activity::new();
        let io = TokioIo::new(Watched { stream, activity: activity.clone() });
        let service = router.clone().map_request(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection =
            graceful.watch(builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service)).into_owned());
        let idle_timeout = limits.idle_timeout;
        connections.spawn(async move {
            let _permit = permit;
            tokio::select! {
                served = connection => if let Err(e) = served {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                },
                () = activity.idle_for(idle_timeout) => tracing::debug!(%peer, "idle connection closed"),
            }
        });
    }
    drop(listener);
    let open = connections.len();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(connections = connections.len(), "grace period over; aborting the remaining connections");
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
    tracing::debug!(open, "every connection is closed");
}

/// When a connection last moved a byte, as milliseconds since it opened.
#[derive(Clone)]
struct Activity {
    opened: Instant,
    /// Written by the connection's reads and writes, read by its idle check; an atomic because
    /// it is one number that only ever moves forward.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self { opened: Instant::now(), last_ms: Arc::default() }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet_until = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle;
            if Instant::now() >= quiet_until {
                return;
            }
            tokio::time::sleep_until(quiet_until).await;
        }
    }
}

/// A socket that records when bytes move.
struct Watched {
    stream: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
