//! The lazy filesystem loses exactly what was not synced when its power is cut: plain files,
//! and LMDB environments (memory-mapped reads, `fdatasync` and `O_DSYNC` meta-page writes),
//! which is what raftix keeps its log, hard state and state machine in.
//!
//! Needs root and `/dev/fuse` (both present on the CI machine).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use heed::types::{Bytes, U64};
use heed::{byteorder::BigEndian, CommitOrAbort, Database, EnvFlags, EnvOpenOptions};
use raftix_lazyfs::LazyMount;

fn lazy_mount(dir: &Path) -> LazyMount {
    LazyMount::start(
        vec![env!("CARGO_BIN_EXE_raftix-lazyfs").into()],
        &dir.join("disk"),
        &dir.join("mnt"),
        None,
    )
    .expect("the lazy filesystem mounts (root and /dev/fuse are needed)")
}

#[test]
fn a_cut_keeps_synced_writes_and_loses_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mount = lazy_mount(dir.path());
    let mnt = mount.mountpoint().to_path_buf();

    let mut synced = fs::File::create(mnt.join("synced")).expect("create");
    synced.write_all(b"durable").expect("write");
    synced.sync_data().expect("fdatasync");
    synced.write_all(b" and then not").expect("write");

    fs::write(mnt.join("unsynced"), b"only in memory").expect("write");
    let mut dsync = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(mnt.join("dsync"))
        .expect("open O_DSYNC");
    dsync.write_all(b"written through").expect("write");

    let shrunk = fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("synced"))
        .expect("open");
    assert_eq!(
        fs::read(mnt.join("synced")).expect("read"),
        b"durable and then not",
        "a process reads its own unsynced writes"
    );
    shrunk.set_len(3).expect("truncate without a sync");
    drop((synced, dsync, shrunk));

    mount.cut_and_remount().expect("cut and remount");
    assert_eq!(fs::read(mnt.join("synced")).expect("read"), b"durable");
    assert_eq!(
        fs::read(mnt.join("unsynced")).expect("read"),
        b"",
        "created, never synced"
    );
    assert_eq!(
        fs::read(mnt.join("dsync")).expect("read"),
        b"written through"
    );
}

/// Opens an LMDB environment on `dir`; with `no_sync`, commits do not fsync (MDB_NOSYNC).
fn env(dir: &Path, no_sync: bool) -> heed::Env {
    fs::create_dir_all(dir).expect("env dir");
    let mut options = EnvOpenOptions::new();
    options.map_size(64 << 20).max_dbs(2);
    if no_sync {
        // SAFETY: NO_SYNC only weakens durability, which is what this test measures.
        unsafe { options.flags(EnvFlags::NO_SYNC) };
    }
    // SAFETY: each environment is opened once in this process and its files are not touched
    // behind LMDB's back.
    unsafe { options.open(dir) }.expect("open env")
}

type Table<'e> = Database<'e, U64<BigEndian>, Bytes>;

/// The environment's one table, created on first use.
fn table(env: &heed::Env) -> Table<'_> {
    let wtxn = env.write_txn().expect("write txn");
    let opened = env
        .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
            let db: Table = opener.create_database(wtxn, Some("kv"))?;
            Ok(CommitOrAbort::<_, std::convert::Infallible>::Commit(db))
        })
        .expect("create the table");
    match opened {
        CommitOrAbort::Commit(db) => db,
        CommitOrAbort::Abort(never) => match never {},
    }
}

fn commit_keys(env: &heed::Env, keys: std::ops::Range<u64>) {
    let db = table(env);
    for key in keys {
        let mut wtxn = env.write_txn().expect("write txn");
        db.put(&mut wtxn, &key, &[key as u8; 300]).expect("put");
        wtxn.commit().expect("commit");
    }
}

fn keys_present(env: &heed::Env) -> Vec<u64> {
    let db = table(env);
    let rtxn = env.read_txn().expect("read txn");
    db.iter(&rtxn)
        .expect("iter")
        .map(|row| {
            let (key, value) = row.expect("row");
            assert_eq!(value, &[key as u8; 300][..], "no torn value for key {key}");
            key
        })
        .collect()
}

#[test]
fn lmdb_commits_survive_a_cut_only_when_synced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mount = lazy_mount(dir.path());
    let mnt = mount.mountpoint().to_path_buf();
    {
        let synced = env(&mnt.join("synced"), false);
        commit_keys(&synced, 0..200);
        let unsynced = env(&mnt.join("nosync"), true);
        commit_keys(&unsynced, 0..200);
        assert_eq!(keys_present(&unsynced).len(), 200, "visible before the cut");
        // The environments are closed here as a killed process's would be: no sync on close.
    }
    mount.cut_and_remount().expect("cut and remount");
    let synced = env(&mnt.join("synced"), false);
    assert_eq!(
        keys_present(&synced),
        (0..200).collect::<Vec<_>>(),
        "every synced commit survives"
    );
    let unsynced = env(&mnt.join("nosync"), true);
    let left = keys_present(&unsynced);
    eprintln!("{} of 200 unsynced commits survived the cut", left.len());
    assert!(
        left.len() < 200,
        "commits without fsync are lost by the cut ({} of 200 survived)",
        left.len()
    );
}
