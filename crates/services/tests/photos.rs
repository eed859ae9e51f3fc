//! The upload path under storage faults, on the disk store and on S3 (s3s-fs): retries,
//! deadlines, all-or-nothing cleanup, an abandoned upload; and re-processing and gc.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::DateTime;
use stride_concurrency::RetryPolicy;
use stride_domain::{
    ActivityDraft, ActivityId, Distance, MovingTime, Password, Sport, StartedAt, Title, UserId, Username, Visibility,
};
use stride_repository::testing::{TestDatabase, deadline};
use stride_repository::{
    BlobError, BlobKey, BlobStore, FaultyBlobStore, LocalBlobStore, PhotoRepo, PhotoSelection, S3TestServer,
    SharedBlobStore, SqliteStore, Store, UnitOfWork,
};
use stride_services::photos::{DELETE_BLOBS_KIND, PROCESSING_VERSION, ReprocessOptions};
use stride_services::{
    Deadline, IdempotencyKey, PhotoConfig, Registration, ServiceError, Settings, Stride, SystemClock, UploadFile,
    Uploaded,
};
use tokio_util::sync::CancellationToken;

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn files(n: usize) -> Vec<UploadFile> {
    (0..n).map(|i| UploadFile::new(format!("p{i}.jpg"), jpeg(300 + i as u32, 200))).collect()
}

/// Quick retries, so fault tests take milliseconds.
fn config() -> PhotoConfig {
    PhotoConfig {
        storage_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_attempts: 4,
            max_elapsed: Duration::from_secs(10),
        },
        ..PhotoConfig::default()
    }
}

struct World {
    stride: Stride<SqliteStore>,
    store: SqliteStore,
    user: UserId,
    activity: ActivityId,
    _db: TestDatabase,
}

async fn world(blobs: SharedBlobStore, photos: PhotoConfig) -> World {
    let db = TestDatabase::sqlite();
    let store = db.sqlite_store().await;
    let stride =
        Stride::new(store.clone(), Arc::new(SystemClock), blobs, Settings { photos, ..Settings::default() }).unwrap();
    let registration = Registration {
        username: Username::parse("photographer").unwrap(),
        password: Password::parse("correct horse battery").unwrap(),
        display_name: None,
        timezone: None,
    };
    let user = stride.auth.register(deadline(), registration, [127, 0, 0, 1].into()).await.unwrap().user.id;
    let draft = ActivityDraft {
        sport: Sport::Run,
        title: Title::default(),
        started_at: StartedAt::new(DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap()),
        duration: MovingTime::from_seconds(600).unwrap(),
        distance: Distance::from_metres(1000.0).unwrap(),
        visibility: Visibility::Private,
        start_latlng: None,
        description: None,
    };
    let activity = stride.activities.create(deadline(), user, draft, None).await.unwrap().activity().id;
    World { stride, store, user, activity, _db: db }
}

impl World {
    /// Runs every queued blob-deletion job once, as the server's job runner would; the blobs
    /// they deleted, or the first failure.
    async fn run_blob_deletions(&self) -> Result<usize, String> {
        let jobs = self.stride.jobs.list(deadline(), None, Some(DELETE_BLOBS_KIND), 100).await.unwrap();
        let mut deleted = 0;
        for job in jobs {
            deleted += self.stride.photos.run_delete_blobs(&job.payload, deadline()).await?;
        }
        Ok(deleted)
    }

    /// Makes the photos look as if an older processing version had made them.
    async fn age(&self, photos: &[stride_domain::Photo]) {
        let mut uow = self.store.write(deadline()).await.unwrap();
        for photo in photos {
            let mut old = photo.clone();
            old.processing_version = 0;
            assert!(uow.replace_renditions(&old, PROCESSING_VERSION).await.unwrap());
        }
        uow.commit().await.unwrap();
    }

    async fn stored_rows(&self) -> usize {
        self.store.read(deadline()).await.unwrap().photos_of_activity(self.activity).await.unwrap().len()
    }
}

async fn blob_keys<B: BlobStore>(store: &B) -> Vec<BlobKey> {
    store.list("photos/", deadline()).await.unwrap()
}

/// The fault tests, run against one store.
async fn faults<B: BlobStore>(make: impl Fn() -> B) {
    // Transient failures are retried and the upload succeeds.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.fail_next(3);
    let uploaded = w.stride.photos.upload(deadline(), w.user, w.activity, files(2), None).await.unwrap();
    assert_eq!(uploaded.photos().len(), 2);
    assert_eq!(faulty.puts(), 6 + 3, "three failed puts were tried again");
    assert_eq!(blob_keys(faulty.inner()).await.len(), 6);
    for photo in uploaded.photos() {
        w.stride.photos.delete(deadline(), w.user, photo.id).await.unwrap();
    }
    assert_eq!(w.stored_rows().await, 0);
    // The rows are gone; their blobs wait for the durable job the deletes enqueued, which
    // fails while the store does and deletes them all once it is back.
    assert_eq!(blob_keys(faulty.inner()).await.len(), 6, "a delete touches no blob itself");
    faulty.fail_next(1_000);
    assert!(w.run_blob_deletions().await.is_err());
    faulty.fail_next(0);
    assert_eq!(w.run_blob_deletions().await, Ok(6));
    assert!(blob_keys(faulty.inner()).await.is_empty());

    // A put that keeps failing: every blob stored so far is deleted, no row is written.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.fail_put_number(5);
    let error = w.stride.photos.upload(deadline(), w.user, w.activity, files(3), None).await.unwrap_err();
    assert!(matches!(&error, ServiceError::StorageUnavailable(why) if why.contains(".jpg")), "{error:?}");
    assert!(blob_keys(faulty.inner()).await.is_empty(), "{:?}", blob_keys(faulty.inner()).await);
    assert_eq!(w.stored_rows().await, 0);

    // Storage slower than the request's deadline: 504, and nothing left once cleanup ran.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.slow_down(Duration::from_millis(400));
    let short = Deadline::after(Duration::from_millis(250));
    let error = w.stride.photos.upload(short, w.user, w.activity, files(2), None).await.unwrap_err();
    assert!(matches!(error, ServiceError::Timeout), "{error:?}");
    faulty.slow_down(Duration::ZERO);
    assert!(blob_keys(faulty.inner()).await.is_empty());
    assert_eq!(w.stored_rows().await, 0);

    // The caller goes away while puts are running: the upload cleans up after itself.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.slow_down(Duration::from_millis(100));
    tokio::select! {
        _ = w.stride.photos.upload(deadline(), w.user, w.activity, files(4), None) => panic!("the upload finished first"),
        () = faulty.puts_started(2) => {}
    }
    w.stride.photos.quiesce().await;
    faulty.slow_down(Duration::ZERO);
    assert!(faulty.puts() >= 2);
    assert!(blob_keys(faulty.inner()).await.is_empty(), "{:?}", blob_keys(faulty.inner()).await);
    assert_eq!(w.stored_rows().await, 0);

    // The caller goes away after a blob was stored: that one is deleted too, and so are those
    // whose puts were still running.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.hold_puts_from(2);
    tokio::select! {
        _ = w.stride.photos.upload(deadline(), w.user, w.activity, files(2), None) => panic!("the upload finished first"),
        () = faulty.puts_stored(1) => {}
    }
    assert_eq!(blob_keys(faulty.inner()).await.len(), 1, "one blob was stored before the caller left");
    faulty.release_puts();
    w.stride.photos.quiesce().await;
    assert!(blob_keys(faulty.inner()).await.is_empty(), "{:?}", blob_keys(faulty.inner()).await);
    assert_eq!(w.stored_rows().await, 0);

    // Every blob stored, then the rows cannot be written (the activity was deleted meanwhile):
    // the blobs are deleted and the upload answers not found.
    let faulty = FaultyBlobStore::new(make());
    let w = world(Arc::new(faulty.clone()), config()).await;
    faulty.hold_puts_from(1);
    let upload = w.stride.photos.upload(deadline(), w.user, w.activity, files(2), None);
    let delete_the_activity_meanwhile = async {
        faulty.puts_started(6).await;
        w.stride.activities.delete(deadline(), w.user, w.activity).await.unwrap();
        faulty.release_puts();
    };
    let (uploaded, ()) = tokio::join!(upload, delete_the_activity_meanwhile);
    assert!(matches!(uploaded, Err(ServiceError::NotFound)), "{uploaded:?}");
    assert_eq!(faulty.puts(), 6, "every blob was stored before the rows were tried");
    w.stride.photos.quiesce().await;
    assert!(blob_keys(faulty.inner()).await.is_empty(), "{:?}", blob_keys(faulty.inner()).await);

    // Two uploads with one Idempotency-Key at once: one set of photos, both answers name it,
    // and the loser's blobs are gone.
    let store = make();
    let w = world(Arc::new(store.clone()), config()).await;
    let key = || Some(IdempotencyKey::parse("same-upload").unwrap());
    let (first, second) = tokio::join!(
        w.stride.photos.upload(deadline(), w.user, w.activity, files(2), key()),
        w.stride.photos.upload(deadline(), w.user, w.activity, files(2), key()),
    );
    let ids = |uploaded: &Uploaded| uploaded.photos().iter().map(|p| p.id).collect::<Vec<_>>();
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(ids(&first), ids(&second));
    assert_eq!(ids(&first).len(), 2);
    assert!(matches!(
        (&first, &second),
        (Uploaded::New(_), Uploaded::Replayed(_)) | (Uploaded::Replayed(_), Uploaded::New(_))
    ));
    assert_eq!(w.stored_rows().await, 2);
    w.stride.photos.quiesce().await;
    assert_eq!(blob_keys(&store).await.len(), 6, "no orphan blob: {:?}", blob_keys(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_on_the_disk_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let counter = AtomicU32::new(0);
    faults(|| {
        let path = root.join(counter.fetch_add(1, Ordering::SeqCst).to_string());
        std::fs::create_dir_all(&path).unwrap();
        futures::executor::block_on(LocalBlobStore::open(path)).unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_on_s3() {
    let servers: std::sync::Mutex<Vec<S3TestServer>> = std::sync::Mutex::default();
    faults(|| {
        let server = S3TestServer::start();
        let store = server.store();
        servers.lock().unwrap().push(server);
        store
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_always_fails_is_tried_as_the_policy_allows_then_cleaned_up() {
    let mut mock = stride_repository::mocks::MockDynBlobStore::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    mock.expect_backend().return_const("mock");
    mock.expect_put_blob().returning(move |_, _, _, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(BlobError::Unavailable("503 Slow Down".into())) })
    });
    // Every key the upload started to write is deleted again (3 a photo, at most).
    mock.expect_delete_blob().times(1..=3).returning(|_, _| Box::pin(async { Ok(()) }));
    let w = world(Arc::new(mock), PhotoConfig { per_request: 1, ..config() }).await;
    let error = w.stride.photos.upload(deadline(), w.user, w.activity, files(1), None).await.unwrap_err();
    assert!(matches!(&error, ServiceError::StorageUnavailable(why) if why.contains("4 attempts")), "{error:?}");
    assert!(attempts.load(Ordering::SeqCst) >= 4, "at least one put went through all four attempts");
    assert_eq!(w.stored_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_stops_reprocessing_and_leaves_every_photo_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultyBlobStore::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let w = world(Arc::new(faulty.clone()), config()).await;
    let uploaded = w.stride.photos.upload(deadline(), w.user, w.activity, files(3), None).await.unwrap();
    w.age(uploaded.photos()).await;
    faulty.fail_next(1_000_000);
    let options = ReprocessOptions {
        selection: PhotoSelection::Activity(w.activity),
        concurrency: 2,
        dry_run: false,
        step_timeout: Duration::from_secs(30),
    };
    let summary = w.stride.photos.reprocess(options.clone(), CancellationToken::new(), |_| {}).await.unwrap();
    assert!(summary.outage.as_deref().is_some_and(|why| why.contains("photo storage")), "{summary:?}");
    assert_eq!((summary.processed, summary.failed.len(), summary.remaining), (0, 0, 3), "{summary:?}");
    // The store is back: the next run re-makes all three.
    faulty.fail_next(0);
    let summary = w.stride.photos.reprocess(options, CancellationToken::new(), |_| {}).await.unwrap();
    assert_eq!((summary.processed, summary.outage), (3, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocessing_remakes_old_photos_once_and_resumes_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let disk = LocalBlobStore::open(dir.path()).await.unwrap();
    let w = world(Arc::new(disk.clone()), config()).await;
    let uploaded = w.stride.photos.upload(deadline(), w.user, w.activity, files(3), None).await.unwrap();
    // Make them look as if an older version had made them.
    w.age(uploaded.photos()).await;
    let options = ReprocessOptions {
        selection: PhotoSelection::Activity(w.activity),
        concurrency: 2,
        dry_run: false,
        step_timeout: Duration::from_secs(30),
    };

    let dry = w
        .stride
        .photos
        .reprocess(ReprocessOptions { dry_run: true, ..options.clone() }, CancellationToken::new(), |_| {})
        .await
        .unwrap();
    assert_eq!((dry.remaining, dry.processed), (3, 0));

    let stopped = CancellationToken::new();
    stopped.cancel();
    let summary = w.stride.photos.reprocess(options.clone(), stopped, |_| {}).await.unwrap();
    assert!(summary.stopped);
    assert_eq!((summary.processed, summary.remaining), (0, 3), "a stop before intake changes nothing");

    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let summary = w
        .stride
        .photos
        .reprocess(options.clone(), CancellationToken::new(), move |e| seen.lock().unwrap().push(e))
        .await
        .unwrap();
    assert_eq!((summary.processed, summary.skipped, summary.failed.len()), (3, 0, 0), "{summary:?}");
    assert_eq!(events.lock().unwrap().len(), 4, "planned + one per photo");
    let rows = w.store.read(deadline()).await.unwrap().photos_of_activity(w.activity).await.unwrap();
    assert!(rows.iter().all(|p| p.processing_version == PROCESSING_VERSION));
    for row in &rows {
        for kind in [stride_domain::PhotoKind::Display, stride_domain::PhotoKind::Thumb] {
            let key = BlobKey::parse(&row.blob_name(kind)).unwrap();
            assert!(disk.get(&key, deadline()).await.is_ok(), "{key} is stored");
        }
    }
    let again = w.stride.photos.reprocess(options.clone(), CancellationToken::new(), |_| {}).await.unwrap();
    assert_eq!((again.processed, again.skipped), (0, 3), "a re-run skips up-to-date photos");

    // gc: an old orphan goes, a fresh one (its upload may be running) and named blobs stay.
    let ancient = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_600_000_000, 0));
    let orphan = BlobKey::parse(&format!("photos/{}/display-v1.jpg", ancient.simple())).unwrap();
    let fresh = BlobKey::parse(&format!("photos/{}/display-v1.jpg", uuid::Uuid::now_v7().simple())).unwrap();
    for key in [&orphan, &fresh] {
        disk.put(key, bytes::Bytes::from_static(b"x"), "image/jpeg", deadline()).await.unwrap();
    }
    let (seen, garbage) = w.stride.photos.collect_garbage(deadline(), false).await.unwrap();
    assert_eq!(garbage, vec![orphan.clone()]);
    assert_eq!(seen, 9 + 2);
    assert!(disk.get(&orphan, deadline()).await.is_err());
    assert!(disk.get(&fresh, deadline()).await.is_ok());
}
