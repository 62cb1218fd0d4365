//! Inode numbers of the mounted filesystem, each naming a path relative to the backing
//! directory. Numbers are handed out on first sight and never reused within one mount, so a
//! stale number can never name another file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The inode number of the mount's root.
pub const ROOT: u64 = 1;

/// The table of inode numbers and the paths they name.
#[derive(Debug)]
pub struct Inodes {
    paths: HashMap<u64, PathBuf>,
    numbers: HashMap<PathBuf, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        let mut inodes = Inodes {
            paths: HashMap::new(),
            numbers: HashMap::new(),
            next: ROOT + 1,
        };
        inodes.paths.insert(ROOT, PathBuf::new());
        inodes.numbers.insert(PathBuf::new(), ROOT);
        inodes
    }
}

impl Inodes {
    /// The path (relative to the backing directory) inode `ino` names.
    pub fn path(&self, ino: u64) -> Option<&Path> {
        self.paths.get(&ino).map(PathBuf::as_path)
    }

    /// The number of `path`, handing out a new one on first sight.
    pub fn number(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.numbers.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, path.to_path_buf());
        self.numbers.insert(path.to_path_buf(), ino);
        ino
    }

    /// The number of `path` if it has one.
    pub fn existing(&self, path: &Path) -> Option<u64> {
        self.numbers.get(path).copied()
    }

    /// Forgets `path` (it was removed); returns its number if it had one.
    pub fn remove(&mut self, path: &Path) -> Option<u64> {
        let ino = self.numbers.remove(path)?;
        self.paths.remove(&ino);
        Some(ino)
    }

    /// Records a rename of `from` (and everything under it) to `to`; returns the number `to`
    /// had before, which now names nothing.
    pub fn rename(&mut self, from: &Path, to: &Path) -> Option<u64> {
        let replaced = self.remove(to);
        let moved: Vec<(PathBuf, u64)> = self
            .numbers
            .iter()
            .filter(|(path, _)| path.starts_with(from))
            .map(|(path, &ino)| (path.clone(), ino))
            .collect();
        for (old, ino) in moved {
            let Ok(rest) = old.strip_prefix(from) else {
                continue;
            };
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.numbers.remove(&old);
            self.numbers.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
        replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_renames_of_files_and_directories() {
        let mut inodes = Inodes::default();
        let dir = inodes.number(Path::new("snap"));
        let file = inodes.number(Path::new("snap/data.mdb"));
        let target = inodes.number(Path::new("live"));
        assert_eq!(
            inodes.number(Path::new("snap")),
            dir,
            "a path keeps its number"
        );
        assert_eq!(
            inodes.rename(Path::new("snap"), Path::new("live")),
            Some(target)
        );
        assert_eq!(inodes.path(dir), Some(Path::new("live")));
        assert_eq!(inodes.path(file), Some(Path::new("live/data.mdb")));
        assert_eq!(inodes.path(target), None, "the replaced file names nothing");
        assert_eq!(inodes.existing(Path::new("snap/data.mdb")), None);
        let fresh = inodes.number(Path::new("snap"));
        assert!(fresh > target, "numbers are never reused");
        assert_eq!(inodes.path(ROOT), Some(Path::new("")));
    }
}
