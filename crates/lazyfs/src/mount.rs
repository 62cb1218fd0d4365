//! A lazy filesystem served by a daemon process, as tests use it: mount, cut the power,
//! mount again over what survived.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to mount.
const MOUNT_WITHIN: Duration = Duration::from_secs(10);

/// One mounted lazy filesystem and its daemon.
#[derive(Debug)]
pub struct LazyMount {
    /// The daemon's program and the arguments before `BACKING MOUNTPOINT`.
    daemon: Vec<OsString>,
    backing: PathBuf,
    mountpoint: PathBuf,
    child: Option<Child>,
    /// Where the daemon's output goes (`None`: discarded).
    log: Option<PathBuf>,
}

impl LazyMount {
    /// Starts `daemon BACKING MOUNTPOINT` (`daemon` is the program and its leading arguments)
    /// and waits until the filesystem is mounted. Both directories are created if missing.
    pub fn start(
        daemon: Vec<OsString>,
        backing: &Path,
        mountpoint: &Path,
        log: Option<PathBuf>,
    ) -> io::Result<LazyMount> {
        std::fs::create_dir_all(backing)?;
        std::fs::create_dir_all(mountpoint)?;
        let mut mount = LazyMount {
            daemon,
            backing: backing.to_path_buf(),
            mountpoint: mountpoint.to_path_buf(),
            child: None,
            log,
        };
        mount.mount()?;
        Ok(mount)
    }

    /// The directory the filesystem is mounted on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The directory holding what is durable.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Whether the daemon is serving (no cut since the last mount).
    pub fn is_mounted(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the daemon and waits for the mount.
    pub fn mount(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        if std::fs::metadata(&self.mountpoint).is_err() {
            // A daemon that died by itself left its mount behind.
            let _ = detach(&self.mountpoint);
        }
        let (program, leading) = self
            .daemon
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no daemon program"))?;
        let mut cmd = Command::new(program);
        cmd.args(leading)
            .arg(&self.backing)
            .arg(&self.mountpoint)
            .stdin(Stdio::null());
        match &self.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "the lazy filesystem daemon {} could not start: {e}",
                    program.to_string_lossy()
                ),
            )
        })?;
        let until = Instant::now() + MOUNT_WITHIN;
        while !is_mounted(&self.mountpoint) {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the lazy filesystem daemon exited ({status}) before mounting {}",
                    self.mountpoint.display()
                )));
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} was not mounted within 10 s", self.mountpoint.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Cuts the power: the daemon is killed with everything not synced, and the dead mount is
    /// detached. Whatever used the filesystem must have been killed first (a process still
    /// using it gets errors, not a power cut).
    pub fn cut(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if is_mounted(&self.mountpoint) || std::fs::metadata(&self.mountpoint).is_err() {
            detach(&self.mountpoint)?;
        }
        Ok(())
    }

    /// Cuts the power and mounts again over what survived.
    pub fn cut_and_remount(&mut self) -> io::Result<()> {
        self.cut()?;
        self.mount()
    }
}

impl Drop for LazyMount {
    fn drop(&mut self) {
        let _ = self.cut();
    }
}

/// Whether a filesystem other than its parent's is mounted on `dir`.
pub fn is_mounted(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(dir), std::fs::metadata(parent)) {
        (Ok(d), Ok(p)) => d.dev() != p.dev(),
        _ => false,
    }
}

/// Detaches whatever is mounted on `dir` (`umount -l`): after a cut, the dead mount.
pub fn detach(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: umount2(2) on a NUL-terminated path.
    if unsafe { libc::umount2(c_dir.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
