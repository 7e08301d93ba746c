//! Logins and who may connect, one module a concern. Everything here is
//! single-threaded and takes no locks; time is passed in where tests need to
//! control it.

pub mod allow;
pub mod base64;
pub mod device;
pub mod guard;
pub mod lockout;
pub mod password;
pub mod secret_file;
pub mod users;

/// A file in this test process's own directory, with the given mode.
#[cfg(test)]
fn temp_file(name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("camtls-auth-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}
