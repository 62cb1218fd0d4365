//! `raftix-lazyfs`: a FUSE filesystem for power-loss tests.
//!
//! It shows a backing directory, but what is written to a file stays in the daemon's memory
//! until the file is synced (`fsync`, `fdatasync`, or a write through an `O_SYNC`/`O_DSYNC`
//! handle). Killing the daemon is a power cut: every write not made durable is gone, and the
//! backing directory holds exactly what a disk that honours fsync would hold. The idea is
//! Jepsen's LazyFS; this is a small implementation of it for raftix's fault suite.
//!
//! Not covered (see `docs/power-loss.md`): directory operations are durable at once (no lost
//! renames or creations), writes are never torn within a page, and nothing is reordered
//! between syncs.

mod fs;
pub mod inodes;
mod mount;
mod ops;
pub mod pages;

use std::io;
use std::path::Path;

pub use fs::LazyFs;
pub use mount::LazyMount;

/// `statvfs(2)` of `path`.
pub(crate) fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: statvfs(2) writes into the zeroed struct we own; the path is NUL-terminated.
    unsafe {
        let mut out: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut out) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(out)
    }
}

/// Mounts a lazy view of `backing` on `mountpoint` and serves it until the filesystem is
/// unmounted or the process is killed (a power cut).
pub fn serve(backing: &Path, mountpoint: &Path) -> io::Result<()> {
    let backing = backing.canonicalize().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "the backing directory {} cannot be used: {e}",
                backing.display()
            ),
        )
    })?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("raftix-lazyfs".into()),
        fuser::MountOption::Subtype("raftix-lazyfs".into()),
    ];
    config.acl = fuser::SessionACL::All;
    fuser::mount2(LazyFs::new(backing), mountpoint, &config)
}
