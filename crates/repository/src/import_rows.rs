//! How imports, their items and track files are read from rows and written in bulk: the
//! decoders of `imports.rs`' queries, and the multi-row insert of an archive's items.

use stride_domain::{ActivityId, Import, ImportId, ImportItem, ItemState, Problem, UserId};

use crate::codec::{corrupt, from_micros};
use crate::dialect::{Columns, Dialect, Param};
use crate::imports::TrackFile;
use crate::{RepoResult, SqlxUnitOfWork};

/// Rows per multi-row insert of items: 6 parameters each, far below either backend's limit.
const ITEMS_PER_INSERT: usize = 64;

pub(crate) fn count(cols: &mut Columns<'_, impl Dialect>, what: &str) -> RepoResult<u32> {
    let value = cols.int()?;
    u32::try_from(value).map_err(|_| corrupt(what, value))
}

pub(crate) fn problem(code: Option<String>, message: Option<String>) -> Option<Problem> {
    code.map(|code| Problem { code, message: message.unwrap_or_default() })
}

pub(crate) fn decode_import<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<Import> {
    let id = ImportId::from_uuid(cols.uuid()?);
    let user_id = UserId::from_uuid(cols.uuid()?);
    let state = cols.text()?;
    Ok(Import {
        id,
        user_id,
        state: state.parse().map_err(|_| corrupt("import state", &state))?,
        sport: cols.optional_text()?,
        visibility: cols.text()?,
        total: match cols.optional_big_int()? {
            Some(total) => Some(u32::try_from(total).map_err(|_| corrupt("total", total))?),
            None => None,
        },
        imported: count(cols, "imported")?,
        duplicate: count(cols, "duplicate")?,
        failed: count(cols, "failed")?,
        cancelled: count(cols, "cancelled")?,
        error: problem(cols.optional_text()?, cols.optional_text()?),
        created_at: from_micros(cols.big_int()?)?,
        finished_at: cols.optional_big_int()?.map(from_micros).transpose()?,
        archive_key: cols.optional_text()?,
        rate_per_s: cols.optional_real()?,
    })
}

pub(crate) fn decode_item<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<ImportItem> {
    let import_id = ImportId::from_uuid(cols.uuid()?);
    let index = count(cols, "idx")?;
    let name = cols.text()?;
    let blob_key = cols.text()?;
    let bytes = cols.big_int()?;
    let state = cols.text()?;
    let activity_id = cols.optional_uuid()?.map(ActivityId::from_uuid);
    let error = problem(cols.optional_text()?, cols.optional_text()?);
    let warnings = cols.text()?;
    Ok(ImportItem {
        import_id,
        index,
        name,
        blob_key,
        bytes: u64::try_from(bytes).map_err(|_| corrupt("bytes", bytes))?,
        state: state.parse().map_err(|_| corrupt("item state", &state))?,
        activity_id,
        error,
        warnings: serde_json::from_str(&warnings).map_err(|_| corrupt("warnings", &warnings))?,
    })
}

pub(crate) fn decode_track_file<DB: Dialect>(cols: &mut Columns<'_, DB>) -> RepoResult<TrackFile> {
    let activity_id = ActivityId::from_uuid(cols.uuid()?);
    let user_id = UserId::from_uuid(cols.uuid()?);
    let (sha256, name, blob_key, bytes) = (cols.bytes()?, cols.text()?, cols.text()?, cols.big_int()?);
    Ok(TrackFile {
        activity_id,
        user_id,
        sha256,
        name,
        blob_key,
        bytes: u64::try_from(bytes).map_err(|_| corrupt("bytes", bytes))?,
    })
}

/// The counter column an item state adds to (a fixed name, never input).
pub(crate) fn counter(state: ItemState) -> &'static str {
    match state {
        ItemState::Imported => "UPDATE imports SET imported = imported + 1 WHERE id = $1",
        ItemState::Duplicate => "UPDATE imports SET duplicate = duplicate + 1 WHERE id = $1",
        ItemState::Failed => "UPDATE imports SET failed = failed + 1 WHERE id = $1",
        ItemState::Cancelled | ItemState::Queued => "UPDATE imports SET cancelled = cancelled + 1 WHERE id = $1",
    }
}

impl<DB: Dialect> SqlxUnitOfWork<DB> {
    /// Items in multi-row inserts of [`ITEMS_PER_INSERT`] (an archive's 20,000 in 313
    /// statements, not 20,000), the remainder one by one.
    pub(crate) async fn insert_items(&mut self, items: &[ImportItem]) -> RepoResult<()> {
        const ONE: &str =
            "INSERT INTO import_items (import_id, idx, name, blob_key, bytes, state) VALUES ($1, $2, $3, $4, $5, $6)";
        let mut chunks = items.chunks_exact(ITEMS_PER_INSERT);
        for chunk in &mut chunks {
            let params: Vec<Param<'_>> = chunk.iter().flat_map(item_params).collect();
            self.execute(many_items_sql(), &params).await?;
        }
        for item in chunks.remainder() {
            self.execute(ONE, &item_params(item)).await?;
        }
        Ok(())
    }
}

pub(crate) fn item_params(item: &ImportItem) -> [Param<'_>; 6] {
    [
        Param::Uuid(item.import_id.as_uuid()),
        Param::Int(item.index as i32),
        Param::Text(&item.name),
        Param::Text(&item.blob_key),
        Param::BigInt(item.bytes as i64),
        Param::Text(item.state.as_str()),
    ]
}

/// The statement of a full chunk, built once: statements are prepared and cached by their
/// text, so it is one static string for the life of the process.
pub(crate) fn many_items_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..ITEMS_PER_INSERT)
            .map(|row| {
                let at = row * 6;
                format!("(${}, ${}, ${}, ${}, ${}, ${})", at + 1, at + 2, at + 3, at + 4, at + 5, at + 6)
            })
            .collect();
        format!("INSERT INTO import_items (import_id, idx, name, blob_key, bytes, state) VALUES {}", rows.join(", "))
    })
}
