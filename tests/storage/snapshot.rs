//! Integration tests of snapshot files: writing and verifying them, the snapshot directory
//! (latest, leftovers, installation), resumable transfers from a leader, and re-labelling a
//! snapshot with another membership.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::fixtures::corrupt_message;
use crate::support::rng::xorshift_bytes;
use raftix::core::{LogId, Membership, SnapshotMeta};
use raftix::storage::{
    incoming_file_name, open_payload, read_snapshot_info, rewrite_membership, snapshot_file_name,
    IncomingSnapshot, SnapshotInfo, SnapshotStore, SnapshotWriter, StorageError,
};

fn meta(term: u64, index: u64) -> SnapshotMeta {
    let mut membership = Membership::with_voters([1, 2, 3]);
    membership.learners.insert(4);
    for id in 1..=4 {
        membership.addrs.insert(id, format!("10.0.0.{id}:7000"));
    }
    SnapshotMeta {
        last: LogId::new(term, index),
        membership,
    }
}

/// Deterministic pseudo-random bytes.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    xorshift_bytes(len, state)
}

fn write_snapshot(dir: &Path, term: u64, index: u64, bytes: &[u8]) -> SnapshotInfo {
    let mut writer = SnapshotWriter::create(dir, &meta(term, index)).unwrap();
    // Uneven chunks, as a state machine would write them.
    for chunk in bytes.chunks(7_777) {
        writer.write_all(chunk).unwrap();
    }
    writer.finish().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

fn read_payload(info: &SnapshotInfo) -> Vec<u8> {
    let mut out = Vec::new();
    let mut reader = open_payload(info).unwrap();
    assert_eq!(reader.len(), info.size - 12 - 12 - header_len(&info.path));
    reader.read_to_end(&mut out).unwrap();
    out
}

fn header_len(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as u64
}

#[test]
fn writer_and_reader_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = payload(1_000_003, 1);
    let info = write_snapshot(dir.path(), 3, 1234, &bytes);
    assert_eq!(
        info.path,
        dir.path()
            .join("snap-00000000000000000003-00000000000000001234.snap")
    );
    assert_eq!(
        info.path.file_name().unwrap().to_str().unwrap(),
        snapshot_file_name(LogId::new(3, 1234))
    );
    assert_eq!(info.meta, meta(3, 1234));
    assert_eq!(info.size, std::fs::metadata(&info.path).unwrap().len());
    // The format: magic, header length, ..., trailer with the payload length and the CRC.
    let raw = std::fs::read(&info.path).unwrap();
    assert_eq!(&raw[..8], b"RXSNAP01");
    let trailer = &raw[raw.len() - 12..];
    assert_eq!(
        u64::from_le_bytes(trailer[..8].try_into().unwrap()),
        bytes.len() as u64
    );
    assert_eq!(
        u32::from_le_bytes(trailer[8..].try_into().unwrap()),
        info.crc
    );
    assert_eq!(crc32fast::hash(&raw[..raw.len() - 12]), info.crc);

    assert_eq!(read_snapshot_info(&info.path).unwrap(), info);
    assert_eq!(read_payload(&info), bytes);
    // Nothing else is left in the directory.
    assert_eq!(names(dir.path()), [snapshot_file_name(LogId::new(3, 1234))]);

    // An empty payload is a valid snapshot too.
    let empty = write_snapshot(dir.path(), 3, 1235, &[]);
    assert_eq!(read_snapshot_info(&empty.path).unwrap(), empty);
    assert!(read_payload(&empty).is_empty());
}

#[test]
fn a_dropped_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SnapshotWriter::create(dir.path(), &meta(1, 1)).unwrap();
    writer.write_all(b"half a snapshot").unwrap();
    assert_eq!(names(dir.path()).len(), 1);
    drop(writer);
    assert!(names(dir.path()).is_empty());
}

#[test]
fn any_damage_is_corrupt_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let info = write_snapshot(dir.path(), 2, 9, &payload(300, 2));
    let good = std::fs::read(&info.path).unwrap();
    let shown = info.path.display().to_string();
    let check = |bytes: &[u8], case: &str| {
        std::fs::write(&info.path, bytes).unwrap();
        let what = corrupt_message(read_snapshot_info(&info.path));
        assert!(what.contains(&shown), "{case}: {what}");
    };
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] ^= 0x10;
        check(&bad, &format!("flip at {pos}"));
    }
    for cut in 0..good.len() {
        check(&good[..cut], &format!("cut at {cut}"));
    }
    let mut longer = good.clone();
    longer.push(0);
    check(&longer, "one byte more");
    std::fs::write(&info.path, &good).unwrap();
    assert_eq!(read_snapshot_info(&info.path).unwrap(), info);
    // The payload reader refuses a file whose size changed since it was verified.
    std::fs::write(&info.path, &longer).unwrap();
    corrupt_message(open_payload(&info));
}

#[test]
fn store_picks_the_newest_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let older = write_snapshot(d, 1, 10, b"ten");
    let newest = write_snapshot(d, 2, 20, b"twenty");
    // Higher index in an older term sorts below (2, 20): the name decides, by (term, index).
    let lower = write_snapshot(d, 1, 15, b"fifteen");
    std::fs::write(
        d.join("tmp-00000000000000000002-00000000000000000030-1-0.part"),
        b"x",
    )
    .unwrap();
    let incoming = incoming_file_name(LogId::new(3, 40), 0xdeadbeef);
    std::fs::write(d.join(&incoming), b"partial").unwrap();
    std::fs::write(d.join("notes.txt"), b"left alone").unwrap();

    let store = SnapshotStore::open(d).unwrap();
    assert_eq!(store.dir(), d);
    assert_eq!(store.latest(), Some(&newest));
    let mut expected = vec![
        incoming.clone(),
        "notes.txt".to_string(),
        snapshot_file_name(newest.meta.last),
    ];
    expected.sort();
    assert_eq!(names(d), expected);
    assert!(!older.path.exists() && !lower.path.exists());

    // An empty directory (created if missing) has no latest snapshot.
    let fresh = SnapshotStore::open(&d.join("sub")).unwrap();
    assert!(fresh.latest().is_none());
}

#[test]
fn store_refuses_a_damaged_or_misnamed_newest_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let older = write_snapshot(d, 1, 10, b"ten");
    let newest = write_snapshot(d, 1, 11, b"eleven");
    let mut bytes = std::fs::read(&newest.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&newest.path, &bytes).unwrap();
    let what = corrupt_message(SnapshotStore::open(d));
    assert!(what.contains(&newest.path.display().to_string()), "{what}");
    // Nothing was deleted: the operator decides.
    assert!(older.path.exists() && newest.path.exists());

    std::fs::remove_file(&newest.path).unwrap();
    let renamed = d.join(snapshot_file_name(LogId::new(5, 50)));
    std::fs::copy(&older.path, &renamed).unwrap();
    let what = corrupt_message(SnapshotStore::open(d));
    assert!(
        what.contains("named after entry 50") && what.contains("up to entry 10"),
        "{what}"
    );
}

#[test]
fn install_makes_latest_deletes_older_and_refuses_stale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut store = SnapshotStore::open(d).unwrap();
    let first = write_snapshot(d, 1, 10, b"a");
    store.install(first.clone()).unwrap();
    assert_eq!(store.latest(), Some(&first));
    let second = write_snapshot(d, 2, 20, b"b");
    store.install(second.clone()).unwrap();
    assert_eq!(store.latest(), Some(&second));
    assert!(!first.path.exists());

    let stale = write_snapshot(d, 1, 15, b"c");
    let err = store.install(stale.clone()).unwrap_err();
    assert!(matches!(err, StorageError::StaleSnapshot { .. }), "{err:?}");
    assert!(err.to_string().contains("up to entry 15"), "{err}");
    assert_eq!(store.latest(), Some(&second));
    assert!(second.path.exists());

    let other = tempfile::tempdir().unwrap();
    let elsewhere = write_snapshot(other.path(), 3, 30, b"d");
    let err = store.install(elsewhere).unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidSnapshot { .. }),
        "{err:?}"
    );
    assert_eq!(store.latest(), Some(&second));

    // Reopening finds the installed one.
    drop(store);
    assert_eq!(SnapshotStore::open(d).unwrap().latest(), Some(&second));
}

/// A snapshot made in its own directory, to be sent somewhere else.
fn source_snapshot(len: usize) -> (tempfile::TempDir, SnapshotInfo, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let info = write_snapshot(dir.path(), 4, 400, &payload(len, 4));
    let file = std::fs::read(&info.path).unwrap();
    (dir, info, file)
}

#[test]
fn incoming_transfer_resumes_after_an_interruption() {
    let (_src, info, file) = source_snapshot(100_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let last = info.meta.last;
    // A partial file of another transfer is deleted when this one starts.
    let other = d.join(incoming_file_name(LogId::new(3, 300), 1));
    std::fs::write(&other, b"old").unwrap();

    let mut incoming = IncomingSnapshot::open(d, last, info.size, info.crc).unwrap();
    assert!(!other.exists());
    assert_eq!(incoming.offset(), 0);
    let mut offset = 0;
    for chunk in file[..40_000].chunks(16_384) {
        offset = incoming.write_chunk(offset, chunk).unwrap();
    }
    assert_eq!(offset, 40_000);
    drop(incoming);
    // The node restarts: the snapshot store leaves the partial file alone.
    drop(SnapshotStore::open(d).unwrap());

    let mut incoming = IncomingSnapshot::open(d, last, info.size, info.crc).unwrap();
    assert_eq!(incoming.offset(), 40_000);
    // A chunk from elsewhere is refused, naming where to resume.
    match incoming.write_chunk(0, &file[..10]) {
        Err(StorageError::SnapshotOffset { offset, got, .. }) => {
            assert_eq!((offset, got), (40_000, 0));
        }
        other => panic!("expected SnapshotOffset, got {other:?}"),
    }
    assert!(matches!(
        incoming.write_chunk(50_000, &file[50_000..50_010]),
        Err(StorageError::SnapshotOffset { .. })
    ));
    let mut too_long = file[40_000..].to_vec();
    too_long.push(0);
    assert!(matches!(
        incoming.write_chunk(40_000, &too_long),
        Err(StorageError::InvalidSnapshot { .. })
    ));
    assert_eq!(incoming.offset(), 40_000);
    let offset = incoming.write_chunk(40_000, &file[40_000..90_000]).unwrap();
    // Finishing early is refused and keeps what was received.
    let err = incoming.finish().unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidSnapshot { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("90000 of"), "{err}");

    let mut incoming = IncomingSnapshot::open(d, last, info.size, info.crc).unwrap();
    assert_eq!(incoming.offset(), offset);
    incoming.write_chunk(offset, &file[90_000..]).unwrap();
    let received = incoming.finish().unwrap();
    assert_eq!(received.path, d.join(snapshot_file_name(last)));
    assert_eq!(
        (received.meta.clone(), received.size, received.crc),
        (info.meta.clone(), info.size, info.crc)
    );
    assert_eq!(names(d), [snapshot_file_name(last)]);
    assert_eq!(read_snapshot_info(&received.path).unwrap(), received);
    assert_eq!(read_payload(&received), read_payload(&info));
    let mut store = SnapshotStore::open(d).unwrap();
    assert_eq!(store.latest(), Some(&received));
    store.install(received).unwrap();
}

#[test]
fn incoming_transfer_that_fails_verification_is_deleted() {
    let (_src, info, file) = source_snapshot(5_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let last = info.meta.last;

    // The leader announced another CRC than the file has.
    let mut incoming = IncomingSnapshot::open(d, last, info.size, info.crc ^ 1).unwrap();
    incoming.write_chunk(0, &file).unwrap();
    let part = incoming.path().to_path_buf();
    let what = corrupt_message(incoming.finish());
    assert!(
        what.contains("announced") && what.contains("deleted"),
        "{what}"
    );
    assert!(!part.exists());

    // A byte damaged in transit.
    let mut damaged = file.clone();
    damaged[2_000] ^= 0x40;
    let mut incoming = IncomingSnapshot::open(d, last, info.size, info.crc).unwrap();
    incoming.write_chunk(0, &damaged).unwrap();
    let part: PathBuf = incoming.path().to_path_buf();
    let what = corrupt_message(incoming.finish());
    assert!(
        what.contains("checksum mismatch") && what.contains("deleted"),
        "{what}"
    );
    assert!(!part.exists());
    assert!(names(d).is_empty());

    // A longer leftover under this transfer's name cannot be it: the transfer starts over.
    std::fs::write(
        d.join(incoming_file_name(last, info.crc)),
        vec![0; file.len() + 1],
    )
    .unwrap();
    let incoming = IncomingSnapshot::open(d, last, info.size, info.crc).unwrap();
    assert_eq!(incoming.offset(), 0);
}

#[test]
fn rewrite_membership_keeps_the_payload() {
    let (src, info, _) = source_snapshot(300_000);
    let dir = tempfile::tempdir().unwrap();
    let membership = Membership::with_voters([7, 8, 9]);
    let rewritten = rewrite_membership(&info, &membership, dir.path()).unwrap();
    assert_eq!(rewritten.meta.last, info.meta.last);
    assert_eq!(rewritten.meta.membership, membership);
    assert_eq!(
        rewritten.path,
        dir.path().join(snapshot_file_name(info.meta.last))
    );
    assert_ne!(rewritten.crc, info.crc);
    assert_eq!(read_snapshot_info(&rewritten.path).unwrap(), rewritten);
    assert_eq!(read_payload(&rewritten), read_payload(&info));
    assert_eq!(
        read_snapshot_info(&info.path).unwrap(),
        info,
        "the source is untouched"
    );

    // A source damaged since it was verified is refused, and nothing is left behind.
    let mut bytes = std::fs::read(&info.path).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(&info.path, &bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let what = corrupt_message(rewrite_membership(&info, &membership, target.path()));
    assert!(what.contains(&info.path.display().to_string()), "{what}");
    assert!(names(target.path()).is_empty());
    drop(src);
}
