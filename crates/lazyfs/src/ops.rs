//! The FUSE requests of [`LazyFs`], each answered from its helpers in `fs.rs`.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use fuser::{
    Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::fs::{errno, Answer, LazyFs, TTL};
use crate::pages::PendingFile;

fn answer_entry(reply: ReplyEntry, result: Answer<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn answer_empty(reply: ReplyEmpty, result: Answer<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        let result = self
            .child_of(&state, parent.0, name)
            .and_then(|rel| self.entry(&mut state, &rel));
        answer_entry(reply, result);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = self.state();
        match self
            .path_of(&state, ino.0)
            .and_then(|rel| self.attr(&state, ino.0, &rel))
        {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.do_setattr(ino.0, mode, (uid, gid), size, (atime, mtime)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let result = self.child_of(&state, parent.0, name).and_then(|rel| {
            let full = self.full(&rel);
            fs::create_dir(&full).map_err(errno)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(mode & !umask & 0o7777))
                .map_err(errno)?;
            self.entry(&mut state, &rel)
        });
        answer_entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = self.child_of(&state, parent.0, name).and_then(|rel| {
            fs::remove_file(self.full(&rel)).map_err(errno)?;
            if let Some(ino) = state.inodes.remove(&rel) {
                state.pending.remove(&ino);
            }
            Ok(())
        });
        answer_empty(reply, result);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = self.child_of(&state, parent.0, name).and_then(|rel| {
            fs::remove_dir(self.full(&rel)).map_err(errno)?;
            state.inodes.remove(&rel);
            Ok(())
        });
        answer_empty(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        answer_empty(
            reply,
            self.do_rename(parent.0, name, newparent.0, newname, flags),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut state = self.state();
        let result = self
            .path_of(&state, ino.0)
            .and_then(|rel| self.open_handle(&mut state, &rel, flags.0));
        match result {
            // No FOPEN_KEEP_CACHE and no direct I/O: the kernel's cache of the file is dropped
            // at each open, and memory maps (LMDB's) work.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let result = self.child_of(&state, parent.0, name).and_then(|rel| {
            let full = self.full(&rel);
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(flags & libc::O_EXCL)
                .mode(mode & !umask & 0o7777)
                .open(&full)
                .map_err(errno)?;
            let ino = state.inodes.number(&rel);
            if flags & libc::O_TRUNC != 0 {
                self.pending(&mut state, ino)?.set_len(0);
            }
            let fh = self.open_handle(&mut state, &rel, flags & !libc::O_TRUNC)?;
            Ok((self.attr(&state, ino, &rel)?, fh))
        });
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state();
        let result = (|| {
            let file = state
                .handles
                .get(&fh.0)
                .ok_or(Errno::EBADF)?
                .file
                .try_clone()
                .map_err(errno)?;
            match state.pending.get(&ino.0) {
                Some(pending) => pending.read(&file, offset, size).map_err(errno),
                None => {
                    let len = file.metadata().map_err(errno)?.len();
                    PendingFile::new(len)
                        .read(&file, offset, size)
                        .map_err(errno)
                }
            }
        })();
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        let result = (|| {
            let handle = state.handles.get(&fh.0).ok_or(Errno::EBADF)?;
            let (file, sync) = (handle.file.try_clone().map_err(errno)?, handle.sync);
            self.pending(&mut state, ino.0)?
                .write(&file, offset, data)
                .map_err(errno)?;
            if sync {
                self.sync_file(&mut state, ino.0, true)?;
            }
            Ok(data.len() as u32)
        })();
        match result {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // What was written stays pending after the last close, as in a page cache.
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        answer_empty(reply, self.sync_file(&mut state, ino.0, datasync));
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(ino.0, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Directory operations are durable at once here.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match crate::statvfs(&self.backing) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        let state = self.state();
        let result = self.path_of(&state, ino.0).and_then(|rel| {
            fs::symlink_metadata(self.full(&rel))
                .map_err(errno)
                .map(drop)
        });
        answer_empty(reply, result);
    }
}
