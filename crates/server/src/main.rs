use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stride_server::import_cli::{self, ImportRequest};
use stride_server::jobs_cli::{self, JobsRequest};
use stride_server::photos_cli::{self, ReprocessRequest};
use stride_server::records_cli;
use stride_server::{Application, Config, init_telemetry, migrate};

/// Stride: self-hostable fitness tracking.
#[derive(Parser)]
#[command(name = "stride", version)]
struct Cli {
    /// A TOML configuration file; `STRIDE_*` environment variables override it.
    #[arg(long, env = "STRIDE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve the API until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Batch work on stored photos.
    #[command(subcommand)]
    Photos(PhotosCommand),
    /// The durable job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Best efforts and personal records.
    #[command(subcommand)]
    Records(RecordsCommand),
    /// Import a zip archive (a Strava export, or watch files zipped up) or one GPX, TCX or FIT
    /// file for a user, as an upload would, showing its progress; exit status 1 when any item
    /// failed. Ctrl-C leaves the import to a running server.
    Import {
        /// The archive or track file, on this machine.
        file: PathBuf,
        /// Whose activities they become.
        #[arg(long, value_name = "USERNAME")]
        user: String,
        /// private, friends (default) or public.
        #[arg(long)]
        visibility: Option<String>,
        /// For files that name no sport: run, ride, swim, walk, hike or other.
        #[arg(long)]
        sport: Option<String>,
    },
}

#[derive(Subcommand)]
enum RecordsCommand {
    /// Recompute the best efforts of every activity with a track whose efforts are older than
    /// this version of Stride (or missing), from the stored tracks; records follow.
    Rebuild {
        /// Only this user's activities.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Newest jobs first.
    List {
        /// available, running, completed, retryable, discarded or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// A kind as stored, e.g. maintenance.purge.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Everything about one job.
    Show { id: String },
    /// Run a finished, discarded, cancelled or retryable job again now, with fresh attempts.
    Retry { id: String },
    /// Cancel a job that has not finished; a running attempt loses its lease.
    Cancel { id: String },
    /// Jobs by kind and state.
    Stats,
}

#[derive(Subcommand)]
enum PhotosCommand {
    /// Re-make the display and thumbnail versions of photos made by an older processing
    /// version. Resumable: up-to-date photos are skipped. Ctrl-C stops intake and lets the
    /// photos in flight finish.
    Reprocess {
        /// Every user's photos (the default).
        #[arg(long, conflicts_with_all = ["user", "activity"])]
        all: bool,
        /// Only this user's photos.
        #[arg(long, value_name = "NAME", conflicts_with = "activity")]
        user: Option<String>,
        /// Only this activity's photos.
        #[arg(long, value_name = "ID")]
        activity: Option<String>,
        /// Photos read, uploaded and recorded at once (decoding runs on one worker per core).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Count what would be re-processed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete stored files no photo names (left by a crash between a delete's commit and its
    /// cleanup, or by an interrupted re-processing run).
    Gc {
        /// List them; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// jemalloc instead of glibc's malloc, for memory that stays flat under load. Measured by
/// `cargo xtask soak` (mixed traffic, 120 requests/s): with glibc the resident set climbed
/// steadily, +8 MiB in 5 minutes, from fragmentation across its per-thread arenas (no leak:
/// the same run under jemalloc levels off); and once one 19 MiB argon2 buffer had been freed,
/// glibc's moving mmap threshold kept later ones in its heaps, resident after they were freed
/// (`cargo xtask abuse`: +157..179 MiB over idle for 300 concurrent logins).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    init_telemetry(&config.log, config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await.context("start stride")?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => migrate(config).await,
        Command::Photos(PhotosCommand::Reprocess { all: _, user, activity, concurrency, dry_run }) => {
            let stop = tokio_util::sync::CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                eprintln!("stopping: no new photos are started; those in flight finish");
                on_signal.cancel();
            });
            let request = ReprocessRequest { user, activity, concurrency, dry_run };
            photos_cli::reprocess(config, request, stop).await.map(drop)
        }
        Command::Import { file, user, visibility, sport } => {
            let stop = tokio_util::sync::CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.cancel();
            });
            let request = ImportRequest { file, user, visibility, sport };
            import_cli::run(config, request, stop).await.map(drop)
        }
        Command::Records(RecordsCommand::Rebuild { user }) => records_cli::rebuild(config, user).await.map(drop),
        Command::Photos(PhotosCommand::Gc { dry_run }) => photos_cli::gc(config, dry_run).await.map(drop),
        Command::Jobs(command) => {
            let request = match command {
                JobsCommand::List { state, kind, limit } => JobsRequest::List { state, kind, limit },
                JobsCommand::Show { id } => JobsRequest::Show { id },
                JobsCommand::Retry { id } => JobsRequest::Retry { id },
                JobsCommand::Cancel { id } => JobsRequest::Cancel { id },
                JobsCommand::Stats => JobsRequest::Stats,
            };
            print!("{}", jobs_cli::run(config, request).await?);
            Ok(())
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
