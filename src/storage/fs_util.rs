//! Small file-system helpers shared by the storage layer: durable directory updates.

use std::fs::File;
use std::path::Path;

use super::error::StorageError;

/// Makes a rename, creation or deletion inside `dir` durable (fsync of the directory).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}
