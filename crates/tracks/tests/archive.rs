//! Archives: the plan of a Strava export and of a plain folder, and the caps of inflation.

use std::io::Cursor;

use stride_tracks::testing::{ZipEntry, gzip, synthetic_run, zip_file};
use stride_tracks::{Archive, ArchiveError, EntryError, Media, RowFile, Work};

const CSV: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,\
Distance,Filename,Elapsed Time,Distance,Media\n\
1,\"Mar 1, 2026, 7:30:00 AM\",\"Morning, run\",Run,,1800,5.0,activities/1.gpx.gz,1800,5000.0,media/a.jpg|media/gone.jpg\n\
2,\"Mar 2, 2026, 7:30:00 AM\",Yoga,Yoga,,3600,0,,3600,0,\n\
3,\"Mar 3, 2026, 7:30:00 AM\",Lost,Ride,,60,1,activities/3.fit.gz,60,1000,\n";

fn open(bytes: Vec<u8>) -> Archive<Cursor<Vec<u8>>> {
    Archive::open(Cursor::new(bytes)).expect("a readable archive")
}

#[test]
fn a_strava_export_plans_its_rows_then_the_tracks_no_row_names() {
    let gpx = stride_tracks::testing::gpx_file(&synthetic_run(30, (46.0, 14.5), 1_770_000_000), None, None);
    let zipped_gpx = gzip(gpx.as_bytes());
    let archive = zip_file(&[
        ZipEntry::File("export/profile.csv", b"a,b\n"),
        ZipEntry::File("export/activities.csv", CSV.as_bytes()),
        ZipEntry::File("export/activities/1.gpx.gz", &zipped_gpx),
        ZipEntry::File("export/activities/extra.gpx", gpx.as_bytes()),
        ZipEntry::File("export/media/a.jpg", b"not really a jpeg"),
        ZipEntry::File("export/media/unnamed.jpg", b"skipped"),
        ZipEntry::File("__MACOSX/export/activities/._1.gpx.gz", b"resource fork"),
        ZipEntry::File("export/../escape.gpx", gpx.as_bytes()),
        ZipEntry::Symlink("export/link.fit", "/etc/passwd"),
    ]);
    let plan = open(archive).plan().unwrap();
    let names: Vec<&str> = plan.iter().map(|item| item.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "activities/1.gpx.gz",
            "activities.csv row 2 (Strava activity 2)",
            "activities/3.fit.gz",
            "export/activities/extra.gpx",
            "export/../escape.gpx",
            "export/link.fit",
        ]
    );
    let Work::Row { row, file, media } = &plan[0].work else { panic!("a row: {:?}", plan[0]) };
    assert_eq!(row.name, "Morning, run");
    assert_eq!(row.distance_m, Some(5000.0));
    assert!(matches!(file, RowFile::Entry(2)), "{file:?}");
    assert_eq!(
        media,
        &[Media::Entry { entry: 4, name: "export/media/a.jpg".into() }, Media::Missing("media/gone.jpg".into())]
    );
    assert!(matches!(&plan[1].work, Work::Row { file: RowFile::None, .. }));
    assert!(matches!(&plan[2].work, Work::Row { file: RowFile::Missing, .. }));
    assert_eq!(plan[3].work, Work::Track { entry: 3 });
    assert!(matches!(&plan[4].work, Work::Unsafe { .. }));
    assert!(matches!(&plan[5].work, Work::Unsafe { .. }));
}

#[test]
fn without_strava_csv_every_track_entry_is_an_item_in_archive_order() {
    let archive = zip_file(&[
        ZipEntry::File("b.fit", b"x"),
        ZipEntry::File("activities.csv", b"not,strava\n1,2\n"),
        ZipEntry::File("a/c.TCX", b"y"),
        ZipEntry::File("inner.zip", b"PK\x03\x04"),
    ]);
    let plan = open(archive).plan().unwrap();
    let names: Vec<&str> = plan.iter().map(|item| item.name.as_str()).collect();
    assert_eq!(names, ["b.fit", "a/c.TCX", "inner.zip"]);
    assert!(matches!(plan[2].work, Work::Unsafe { .. }));
}

#[test]
fn entries_inflate_under_their_cap_counted_as_they_grow() {
    let big = vec![b'a'; 3 << 20];
    let archive = zip_file(&[ZipEntry::File("big.gpx", &big), ZipEntry::File("nested.gpx", b"PK\x03\x04rest")]);
    let mut archive = open(archive);
    let mut seen = 0;
    let whole = archive
        .read_entry(0, 3 << 20, &mut |held| {
            seen = held;
            Ok(())
        })
        .unwrap();
    assert_eq!((whole.len(), seen), (3 << 20, 3 << 20));
    let capped = archive.read_entry(0, (3 << 20) - 1, &mut |_| Ok(()));
    assert!(matches!(capped, Err(EntryError::TooLarge(_))), "{capped:?}");
    let stopped = archive.read_entry(0, 3 << 20, &mut |held| {
        if held > 1 << 20 { Err(EntryError::TooLarge("the archive's total".into())) } else { Ok(()) }
    });
    assert_eq!(stopped, Err(EntryError::TooLarge("the archive's total".into())));
    assert_eq!(archive.read_entry(1, 1 << 20, &mut |_| Ok(())), Err(EntryError::Nested));
}

#[test]
fn what_is_no_zip_is_an_invalid_archive() {
    let refused = Archive::open(Cursor::new(b"PK\x03\x04 but truncated".to_vec())).err();
    assert!(matches!(refused, Some(ArchiveError::Invalid(_))), "{:?}", refused.map(|e| e.to_string()));
    assert_eq!(ArchiveError::TooManyItems(20_001).code(), "too_many_items");
}
