//! The cluster secret file (`--cluster-secret-file`, `cluster_secret_file` in the config file):
//! the shared secret with which peers authenticate each other (see [`crate::transport::auth`]).
//!
//! The file holds the secret as text (surrounding whitespace is ignored), at least 16 bytes, for
//! example the output of `openssl rand -hex 32`. Like a token file it must not be readable by
//! group or others. Every node of the cluster needs the same secret.

use std::path::Path;

use super::ConfigError;
use crate::transport::ClusterSecret;

/// Reads and checks a cluster secret file.
pub fn load_cluster_secret(path: &Path) -> Result<ClusterSecret, ConfigError> {
    let bad = |reason: String| ConfigError::SecretFile {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    super::tokens::check_private(path, &meta).map_err(bad)?;
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let text = bytes.trim_ascii();
    ClusterSecret::new(text.to_vec()).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_private_long_secret_loads_and_bad_files_are_refused_without_quoting_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = write(dir.path(), "  0123456789abcdef0123\n", 0o600);
        let a = load_cluster_secret(&good).expect("loads");
        let same = ClusterSecret::new(b"0123456789abcdef0123".to_vec()).expect("long");
        assert_eq!(a, same, "whitespace is trimmed");
        let open = write(dir.path(), "0123456789abcdef0123", 0o644);
        let err = load_cluster_secret(&open).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("0123456789"), "{err}");
        let short = write(dir.path(), "short-secret", 0o600);
        let err = load_cluster_secret(&short).unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");
        let err = load_cluster_secret(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("--cluster-secret-file"), "{err}");
    }
}
