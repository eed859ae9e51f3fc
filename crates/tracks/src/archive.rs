//! Zip archives of tracks — a folder of watch files zipped up, or Strava's export — read as a
//! plan of items and entries inflated under caps.
//!
//! The plan is a pure function of the archive's directory and its `activities.csv`, so every
//! attempt of an import computes the same items in the same order and resumes by index.
//! Nothing an entry's header says about its size is trusted: [`Archive::read_entry`] counts
//! the bytes as they inflate and stops one past the cap.

use std::io::{Read, Seek};

use crate::strava::{StravaRow, read_activities_csv};

/// Items one archive may hold.
pub const MAX_ITEMS: usize = 20_000;
/// All entries of one archive together, once inflated.
pub const MAX_ARCHIVE_INFLATED_BYTES: u64 = 8 << 30;
/// `activities.csv` once inflated (Strava's for 20,000 activities is ~15 MB).
pub const MAX_CSV_BYTES: u64 = 64 << 20;

/// Whether `bytes` start like a zip archive (a local file header, or an empty archive's end).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Why an archive could not be read at all: the import fails as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// Not a zip, or one whose directory is damaged (`invalid_archive`).
    #[error("the archive cannot be read: {0}")]
    Invalid(String),
    /// More than [`MAX_ITEMS`] items (`too_many_items`).
    #[error("the archive holds {0} items; at most 20,000 are imported from one archive")]
    TooManyItems(usize),
}

impl ArchiveError {
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Invalid(_) => "invalid_archive",
            ArchiveError::TooManyItems(_) => "too_many_items",
        }
    }
}

/// Why one entry could not be read: its item fails with the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(String),
    /// A zip inside the zip, found from its bytes.
    #[error("a nested archive is not imported")]
    Nested,
}

impl EntryError {
    pub fn code(&self) -> &'static str {
        match self {
            EntryError::TooLarge(_) => "too_large",
            EntryError::Invalid(_) => "invalid_file",
            EntryError::Nested => "unsafe_entry",
        }
    }
}

/// One item of an archive's import, in the order they are imported.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedItem {
    /// What the item list shows: the entry's name, or the row's.
    pub name: String,
    /// The entry's size as its header declares it (display only); 0 for a row without a file.
    pub declared_bytes: u64,
    pub work: Work,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A track entry (its index in the archive).
    Track { entry: usize },
    /// A row of Strava's CSV, with what its file and photos resolved to.
    Row { row: Box<StravaRow>, file: RowFile, media: Vec<Media> },
    /// An entry that is refused unread (`unsafe_entry`), and why.
    Unsafe { why: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowFile {
    /// The row names no file: a manual activity.
    None,
    Entry(usize),
    /// Named, but not in the archive (`missing_file`).
    Missing,
    /// Named, but unsafe to read (`unsafe_entry`).
    Unsafe(String),
}

/// A photo a row names.
#[derive(Debug, Clone, PartialEq)]
pub enum Media {
    Entry { entry: usize, name: String },
    Missing(String),
    Unsafe(String),
}

/// What an entry is, from its name and kind alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Directories, `__MACOSX/` and every file that is no track.
    Skipped,
    Track,
    Unsafe(String),
}

fn classify(name: &str, is_dir: bool, is_symlink: bool) -> Kind {
    if is_dir || name.ends_with('/') || name.split('/').any(|part| part == "__MACOSX") {
        return Kind::Skipped;
    }
    if let Some(why) = unsafe_reason(name, is_symlink) {
        return Kind::Unsafe(why);
    }
    let lower = name.to_ascii_lowercase();
    let plain = lower.strip_suffix(".gz").unwrap_or(&lower);
    if [".gpx", ".tcx", ".fit"].iter().any(|ext| plain.ends_with(ext)) { Kind::Track } else { Kind::Skipped }
}

fn unsafe_reason(name: &str, is_symlink: bool) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let absolute = name.starts_with('/') || name.starts_with('\\') || name.as_bytes().get(1) == Some(&b':');
    if absolute {
        Some("the entry's name is an absolute path".into())
    } else if name.split(['/', '\\']).any(|part| part == "..") {
        Some("the entry's name climbs out of the archive (`..`)".into())
    } else if is_symlink {
        Some("the entry is a symbolic link".into())
    } else if [".zip", ".jar", ".7z", ".rar", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        Some("a nested archive is not imported".into())
    } else {
        None
    }
}

/// An open archive: its directory read once, entries read on demand. Cloning shares the
/// directory (the reader must be cloneable, e.g. a positional file handle), so entries can be
/// inflated on several threads at once.
#[derive(Clone)]
pub struct Archive<R> {
    zip: zip::ZipArchive<R>,
}

impl<R: Read + Seek> Archive<R> {
    pub fn open(reader: R) -> Result<Self, ArchiveError> {
        let zip = zip::ZipArchive::new(reader).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        Ok(Self { zip })
    }

    fn entry(&self, index: usize) -> Option<(String, bool, bool, u64)> {
        let entry = self.zip.by_index_data(index).ok()?;
        let name = entry.name().ok()?.into_owned();
        Some((name, entry.is_dir(), entry.is_symlink(), entry.size()))
    }

    /// The items, in import order: with Strava's CSV its rows in file order, then every track
    /// entry no row names; without it every track entry in archive order; unsafe entries
    /// (not named by a row) among them where they stand.
    pub fn plan(&mut self) -> Result<Vec<PlannedItem>, ArchiveError> {
        let entries: Vec<(String, bool, bool, u64)> = (0..self.zip.len())
            .map(|index| self.entry(index).ok_or_else(|| ArchiveError::Invalid(format!("entry {index} is damaged"))))
            .collect::<Result<_, _>>()?;
        let rows = self.strava_rows(&entries);
        let mut named = vec![false; entries.len()];
        let mut items = Vec::new();
        if let Some((folder, rows)) = rows {
            let find = |relative: &str| {
                let full = format!("{folder}{relative}");
                entries.iter().position(|(name, ..)| *name == full).map(|index| (index, full))
            };
            for row in rows {
                let file = match row.filename.as_str() {
                    "" => RowFile::None,
                    relative => match find(relative) {
                        None => RowFile::Missing,
                        Some((index, name)) => {
                            named[index] = true;
                            match unsafe_reason(&name, entries[index].2) {
                                Some(why) => RowFile::Unsafe(why),
                                None => RowFile::Entry(index),
                            }
                        }
                    },
                };
                let media = row
                    .media
                    .iter()
                    .map(|relative| match find(relative) {
                        None => Media::Missing(relative.clone()),
                        Some((index, name)) => {
                            named[index] = true;
                            match unsafe_reason(&name, entries[index].2) {
                                Some(_) => Media::Unsafe(name),
                                None => Media::Entry { entry: index, name },
                            }
                        }
                    })
                    .collect();
                let declared_bytes = match file {
                    RowFile::Entry(index) => entries[index].3,
                    _ => 0,
                };
                let name = match row.filename.as_str() {
                    "" => format!("activities.csv row {} (Strava activity {})", row.row, row.activity_id),
                    file => file.to_owned(),
                };
                items.push(PlannedItem { name, declared_bytes, work: Work::Row { row: Box::new(row), file, media } });
            }
        }
        for (index, (name, is_dir, is_symlink, size)) in entries.iter().enumerate() {
            if named[index] {
                continue;
            }
            let work = match classify(name, *is_dir, *is_symlink) {
                Kind::Skipped => continue,
                Kind::Track => Work::Track { entry: index },
                Kind::Unsafe(why) => Work::Unsafe { why },
            };
            items.push(PlannedItem { name: name.clone(), declared_bytes: *size, work });
        }
        if items.len() > MAX_ITEMS {
            return Err(ArchiveError::TooManyItems(items.len()));
        }
        Ok(items)
    }

    /// Strava's rows and the folder the CSV is in (`""` at the root, `export_1/` below it),
    /// when the shallowest `activities.csv` has Strava's header; otherwise `None` (the CSV is
    /// then a file like any other that is no track).
    fn strava_rows(&mut self, entries: &[(String, bool, bool, u64)]) -> Option<(String, Vec<StravaRow>)> {
        let (index, name) = entries
            .iter()
            .enumerate()
            .filter(|(_, (name, is_dir, ..))| {
                !is_dir && (name == "activities.csv" || name.ends_with("/activities.csv")) && !name.contains("__MACOSX")
            })
            .min_by_key(|(_, (name, ..))| name.matches('/').count())
            .map(|(index, (name, ..))| (index, name.clone()))?;
        let bytes = self.read_entry(index, MAX_CSV_BYTES, &mut |_| Ok(())).ok()?;
        let rows = read_activities_csv(&bytes).ok()?;
        let folder = name.strip_suffix("activities.csv").unwrap_or_default().to_owned();
        Some((folder, rows))
    }

    /// The entry's bytes, inflated, at most `cap` of them. `grown` is told the bytes held
    /// so far each time they grow, and may stop the read (the archive's total, a memory
    /// budget) with an error of its own.
    pub fn read_entry(
        &mut self,
        index: usize,
        cap: u64,
        grown: &mut dyn FnMut(u64) -> Result<(), EntryError>,
    ) -> Result<Vec<u8>, EntryError> {
        let entry = self.zip.by_index(index).map_err(|e| EntryError::Invalid(e.to_string()))?;
        let declared = entry.size();
        let bytes = read_capped(entry, cap, declared, grown)?;
        if is_zip(&bytes) {
            return Err(EntryError::Nested);
        }
        Ok(bytes)
    }
}

/// `bytes` gunzipped when they are gzip (a `.fit.gz` of Strava's), under `cap` and told to
/// `grown` as [`Archive::read_entry`] does; `None` when they are not gzip.
pub fn gunzip_capped(
    bytes: &[u8],
    cap: u64,
    grown: &mut dyn FnMut(u64) -> Result<(), EntryError>,
) -> Option<Result<Vec<u8>, EntryError>> {
    // The trailer's size (modulo 4 GiB), a hint like an entry's header.
    let declared = bytes
        .len()
        .checked_sub(4)
        .map_or(0, |at| u64::from(u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])));
    bytes
        .starts_with(&[0x1f, 0x8b])
        .then(|| read_capped(flate2::read::MultiGzDecoder::new(bytes), cap, declared, grown))
}

/// Everything `reader` gives, at most `cap` bytes: the count is of bytes as they arrive, so a
/// header's claim is never what stops (or fails to stop) a bomb. The claim (`declared`) only
/// sizes the buffer, up to the cap: an honest entry is read without a reallocation, so its
/// old and new buffers are never in memory together (an untouched capacity costs no memory).
fn read_capped(
    mut reader: impl Read,
    cap: u64,
    declared: u64,
    grown: &mut dyn FnMut(u64) -> Result<(), EntryError>,
) -> Result<Vec<u8>, EntryError> {
    let mut bytes = Vec::with_capacity(declared.min(cap).saturating_add(1) as usize);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = reader.read(&mut chunk).map_err(|e| EntryError::Invalid(format!("the entry is damaged: {e}")))?;
        if read == 0 {
            return Ok(bytes);
        }
        if (bytes.len() + read) as u64 > cap {
            return Err(EntryError::TooLarge(format!("the entry is over {} MiB once inflated", cap >> 20)));
        }
        bytes.extend_from_slice(&chunk[..read]);
        grown(bytes.len() as u64)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_without_reading() {
        assert_eq!(classify("activities/1.fit.gz", false, false), Kind::Track);
        assert_eq!(classify("Run.GPX", false, false), Kind::Track);
        assert_eq!(classify("a/b.tcx", false, false), Kind::Track);
        assert_eq!(classify("profile.csv", false, false), Kind::Skipped);
        assert_eq!(classify("media/x.jpg", false, false), Kind::Skipped);
        assert_eq!(classify("__MACOSX/activities/._1.gpx", false, false), Kind::Skipped);
        assert_eq!(classify("activities/", true, false), Kind::Skipped);
        for unsafe_name in ["../evil.gpx", "a/../../b.gpx", "/etc/x.gpx", "C:/x.gpx", "inner.zip", "x.tar.gz"] {
            assert!(matches!(classify(unsafe_name, false, false), Kind::Unsafe(_)), "{unsafe_name}");
        }
        assert!(matches!(classify("link.gpx", false, true), Kind::Unsafe(_)));
        // A dotted name that climbs nowhere is fine.
        assert_eq!(classify("run..2.gpx", false, false), Kind::Track);
    }

    #[test]
    fn zips_are_recognised_from_their_first_bytes() {
        assert!(is_zip(b"PK\x03\x04rest"));
        assert!(is_zip(b"PK\x05\x06"));
        assert!(!is_zip(b"<gpx"));
    }
}
