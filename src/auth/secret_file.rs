//! The mode check for files that hold a secret: the auth file, the
//! device's login, the TLS key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A warning for a secret file (auth file, backend auth file, TLS key) that group or
/// others may read. A warning, not a refusal: on Tomato everything runs as
/// root from /jffs and the mode is often lost when files are copied there,
/// and refusing to start would leave the camera unprotected instead.
pub fn permission_warning(what: &str, path: &Path) -> Option<String> {
    let mode = fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{what} {} is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}
