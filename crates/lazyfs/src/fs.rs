//! The FUSE filesystem: a pass-through to a backing directory in which file content reaches the
//! backing files only on `fsync`/`fdatasync` (or a write through an `O_SYNC`/`O_DSYNC` handle).
//!
//! Directory operations (create, mkdir, unlink, rmdir, rename) and permission changes are done on
//! the backing directory at once: they survive a cut even without an `fsync` of the directory.
//! That is the one way this filesystem is kinder than a real disk, and `docs/power-loss.md`
//! says so.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo, RenameFlags, ReplyDirectory, TimeOrNow};

use crate::inodes::{Inodes, ROOT};
use crate::pages::PendingFile;

/// How long the kernel may cache names and attributes.
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// An open file.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) file: File,
    /// Opened with `O_SYNC` or `O_DSYNC`: every write is durable before it is answered.
    pub(crate) sync: bool,
}

/// Everything the filesystem knows, behind one lock (the daemon serves one request at a time).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) inodes: Inodes,
    /// Files with unsynced writes or truncations, by inode number.
    pub(crate) pending: HashMap<u64, PendingFile>,
    pub(crate) handles: HashMap<u64, Handle>,
    pub(crate) next_handle: u64,
}

/// The lazy filesystem over one backing directory.
#[derive(Debug)]
pub struct LazyFs {
    pub(crate) backing: PathBuf,
    state: Mutex<State>,
}

/// A result answered to the kernel: a value or an errno.
pub(crate) type Answer<T> = Result<T, Errno>;

/// The errno of an I/O error (EIO when it has none).
pub(crate) fn errno(e: io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_i32)
}

impl LazyFs {
    /// A filesystem showing `backing`.
    pub fn new(backing: PathBuf) -> Self {
        Self {
            backing,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    pub(crate) fn path_of(&self, state: &State, ino: u64) -> Answer<PathBuf> {
        state
            .inodes
            .path(ino)
            .map(Path::to_path_buf)
            .ok_or(Errno::ENOENT)
    }

    pub(crate) fn child_of(&self, state: &State, parent: u64, name: &OsStr) -> Answer<PathBuf> {
        Ok(self.path_of(state, parent)?.join(name))
    }

    /// The attributes of `rel` (number `ino`), with the length its users see.
    pub(crate) fn attr(&self, state: &State, ino: u64, rel: &Path) -> Answer<FileAttr> {
        let meta = fs::symlink_metadata(self.full(rel)).map_err(errno)?;
        let size = state
            .pending
            .get(&ino)
            .map_or(meta.len(), PendingFile::visible_len);
        let time = |secs: i64, nanos: i64| {
            UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: 4096,
            flags: 0,
        })
    }

    /// The entry of `rel`, numbering it.
    pub(crate) fn entry(&self, state: &mut State, rel: &Path) -> Answer<FileAttr> {
        let ino = state.inodes.number(rel);
        self.attr(state, ino, rel)
    }

    /// The pending state of `ino`, created over its backing file on first use.
    pub(crate) fn pending<'s>(
        &self,
        state: &'s mut State,
        ino: u64,
    ) -> Answer<&'s mut PendingFile> {
        if !state.pending.contains_key(&ino) {
            let rel = self.path_of(state, ino)?;
            let len = fs::metadata(self.full(&rel)).map_err(errno)?.len();
            state.pending.insert(ino, PendingFile::new(len));
        }
        state.pending.get_mut(&ino).ok_or(Errno::EIO)
    }

    /// Makes everything pending on `ino` durable.
    pub(crate) fn sync_file(&self, state: &mut State, ino: u64, data_only: bool) -> Answer<()> {
        let rel = self.path_of(state, ino)?;
        let file = OpenOptions::new()
            .write(true)
            .open(self.full(&rel))
            .map_err(errno)?;
        match state.pending.get_mut(&ino) {
            Some(pending) => pending.flush(&file, data_only).map_err(errno)?,
            None if data_only => file.sync_data().map_err(errno)?,
            None => file.sync_all().map_err(errno)?,
        }
        state.pending.remove(&ino);
        Ok(())
    }

    pub(crate) fn open_handle(&self, state: &mut State, rel: &Path, flags: i32) -> Answer<u64> {
        let access = flags & libc::O_ACCMODE;
        // Always readable: a write covering part of a page reads the rest first.
        let file = OpenOptions::new()
            .read(true)
            .write(access != libc::O_RDONLY)
            .custom_flags(flags & libc::O_NOFOLLOW)
            .open(self.full(rel))
            .map_err(errno)?;
        state.next_handle += 1;
        let fh = state.next_handle;
        let sync = flags & (libc::O_SYNC | libc::O_DSYNC) != 0;
        state.handles.insert(fh, Handle { file, sync });
        Ok(fh)
    }

    pub(crate) fn do_setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Answer<FileAttr> {
        let mut state = self.state();
        let rel = self.path_of(&state, ino)?;
        let full = self.full(&rel);
        if let Some(mode) = mode {
            fs::set_permissions(&full, fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::chown(&full, owner.0, owner.1).map_err(errno)?;
        }
        if let Some(size) = size {
            self.pending(&mut state, ino)?.set_len(size);
        }
        if times.0.is_some() || times.1.is_some() {
            let file = File::options().write(true).open(&full).map_err(errno)?;
            let mut set = fs::FileTimes::new();
            let at = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => std::time::SystemTime::now(),
            };
            if let Some(t) = times.0 {
                set = set.set_accessed(at(t));
            }
            if let Some(t) = times.1 {
                set = set.set_modified(at(t));
            }
            file.set_times(set).map_err(errno)?;
        }
        self.attr(&state, ino, &rel)
    }

    pub(crate) fn do_rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Answer<()> {
        let mut state = self.state();
        let from = self.child_of(&state, parent, name)?;
        let to = self.child_of(&state, new_parent, new_name)?;
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return Err(Errno::EINVAL);
        }
        if flags.contains(RenameFlags::RENAME_NOREPLACE)
            && self.full(&to).symlink_metadata().is_ok()
        {
            return Err(Errno::EEXIST);
        }
        fs::rename(self.full(&from), self.full(&to)).map_err(errno)?;
        if let Some(replaced) = state.inodes.rename(&from, &to) {
            state.pending.remove(&replaced);
        }
        Ok(())
    }

    pub(crate) fn do_readdir(
        &self,
        ino: u64,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Answer<()> {
        let mut state = self.state();
        let rel = self.path_of(&state, ino)?;
        let mut entries: Vec<(u64, FileType, std::ffi::OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (ROOT, FileType::Directory, "..".into()),
        ];
        let mut children: Vec<_> = fs::read_dir(self.full(&rel))
            .map_err(errno)?
            .filter_map(Result::ok)
            .collect();
        children.sort_by_key(fs::DirEntry::file_name);
        for child in children {
            let kind = child
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            let number = state.inodes.number(&rel.join(child.file_name()));
            entries.push((number, kind, child.file_name()));
        }
        for (index, (number, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(number), index as u64 + 1, kind, name) {
                break;
            }
        }
        Ok(())
    }
}
