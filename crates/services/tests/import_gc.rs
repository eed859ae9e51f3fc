//! The daily gc's part for imports: stored files no import item names and stored points no
//! activity has are deleted once older than an hour; named, owned and young ones stay.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use stride_domain::{Import, ImportId, ImportItem, ImportState, ItemState, import_item_blob, track_points_blob};
use stride_repository::testing::{TestDatabase, deadline};
use stride_repository::{BlobKey, BlobStore, ImportRepo, LocalBlobStore, Store, UnitOfWork};
use stride_services::{Registration, Settings, Stride, SystemClock};
use uuid::{Timestamp, Uuid};

/// A UUIDv7 minted `hours` ago.
fn minted_hours_ago(hours: u64) -> Uuid {
    let seconds = Utc::now().timestamp() as u64 - hours * 3600;
    Uuid::new_v7(Timestamp::from_unix(uuid::NoContext, seconds, 0))
}

#[tokio::test]
async fn unnamed_import_files_and_unowned_points_go_once_older_than_an_hour() {
    let db = TestDatabase::sqlite();
    let store = db.sqlite_store().await;
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let stride = Stride::new(store.clone(), Arc::new(SystemClock), disk.clone(), Settings::default()).unwrap();
    let registration = Registration {
        username: stride_domain::Username::parse("gc_owner").unwrap(),
        password: stride_domain::Password::parse("correct horse battery").unwrap(),
        display_name: None,
        timezone: None,
    };
    let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user.id;

    // An old import whose item names its file.
    let named = ImportId::from_uuid(minted_hours_ago(3));
    let import = Import {
        id: named,
        user_id: user,
        state: ImportState::Done,
        sport: None,
        visibility: "friends".into(),
        total: Some(1),
        imported: 0,
        duplicate: 0,
        failed: 0,
        cancelled: 0,
        error: None,
        created_at: Utc::now(),
        finished_at: None,
        archive_key: None,
        rate_per_s: None,
    };
    let item = ImportItem {
        import_id: named,
        index: 0,
        name: "a.gpx".into(),
        blob_key: import_item_blob(named, 0),
        bytes: 3,
        state: ItemState::Queued,
        activity_id: None,
        error: None,
        warnings: Vec::new(),
    };
    let mut uow = store.write(deadline()).await.unwrap();
    uow.insert_import(&import, std::slice::from_ref(&item)).await.unwrap();
    uow.commit().await.unwrap();

    let orphan_file = import_item_blob(ImportId::from_uuid(minted_hours_ago(2)), 0);
    let young_file = import_item_blob(ImportId::new(), 0);
    let orphan_points = track_points_blob(stride_domain::ActivityId::from_uuid(minted_hours_ago(2)));
    let young_points = track_points_blob(stride_domain::ActivityId::new());
    for key in [&item.blob_key, &orphan_file, &young_file, &orphan_points, &young_points] {
        let key = BlobKey::parse(key).unwrap();
        disk.put(&key, Bytes::from_static(b"abc"), "application/octet-stream", deadline()).await.unwrap();
    }

    let (seen, garbage) = stride.imports.collect_garbage(deadline(), true).await.unwrap();
    assert_eq!(seen, 5);
    let mut names: Vec<&str> = garbage.iter().map(BlobKey::as_str).collect();
    names.sort_unstable();
    let mut expected = vec![orphan_file.as_str(), orphan_points.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected, "a dry run names them");
    assert_eq!(disk.list("", deadline()).await.unwrap().len(), 5, "and deletes nothing");
    stride.imports.collect_garbage(deadline(), false).await.unwrap();
    let left: Vec<String> = disk.list("", deadline()).await.unwrap().iter().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&item.blob_key) && left.contains(&young_file) && left.contains(&young_points));
}
