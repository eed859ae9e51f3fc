//! The disk store's file work: atomic writes (temporary file, fsync, rename, fsync of the
//! directory), listing keys, and running it on tokio's blocking pool under a deadline.

use std::io::Write;
use std::path::Path;

use stride_concurrency::Deadline;

use crate::{BlobError, BlobKey, BlobResult};

pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(target, |file| file.write_all(bytes))
}

pub(crate) fn write_atomically_with(
    target: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = target.parent().ok_or_else(|| std::io::Error::other("a blob path has a parent"))?;
    std::fs::create_dir_all(dir)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let temporary = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::now_v7().simple()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&temporary, target)?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Keys of the regular files under `dir`, skipping temporary files (their names start with a
/// dot, which no key segment may).
pub(crate) fn collect_keys(root: &Path, dir: &Path, keys: &mut Vec<BlobKey>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_keys(root, &path, keys)?;
        } else if let Some(key) = path.strip_prefix(root).ok().and_then(|relative| relative.to_str())
            && let Ok(key) = BlobKey::parse(key)
        {
            keys.push(key);
        }
    }
    Ok(())
}

/// Runs file I/O on the blocking pool, bounded by `deadline`, with io errors classified.
pub(crate) async fn blocking<T: Send + 'static>(
    deadline: Deadline,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> BlobResult<T> {
    // Work whose deadline has already passed is not started: blocking I/O cannot be
    // interrupted once it runs.
    if deadline.remaining().is_zero() {
        return Err(BlobError::Timeout);
    }
    match deadline.run(tokio::task::spawn_blocking(work)).await {
        Err(_) => Err(BlobError::Timeout),
        Ok(Err(join)) => Err(BlobError::Other(format!("blob I/O task failed: {join}"))),
        Ok(Ok(Err(io))) if io.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound),
        Ok(Ok(Err(io))) => Err(classify_io(io)),
        Ok(Ok(Ok(value))) => Ok(value),
    }
}

pub(crate) fn classify_io(error: std::io::Error) -> BlobError {
    use std::io::ErrorKind::*;
    match error.kind() {
        // Space or quota may free up, and an interrupted call may simply be repeated.
        StorageFull | QuotaExceeded | Interrupted | TimedOut | WouldBlock | ResourceBusy => {
            BlobError::Unavailable(error.to_string())
        }
        _ => BlobError::Other(error.to_string()),
    }
}
