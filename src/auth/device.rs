//! The device's own login, `--backend-auth USER:PASS` or
//! `--backend-auth-file FILE`, as the Authorization value camtls sends it, so
//! the device's password never crosses the internet.

use std::fs;
use std::path::Path;

use crate::auth::base64;

/// The Authorization value for `USER:PASS` (RFC 7617), unchecked.
fn basic_credentials(user_pass: &str) -> String {
    format!("Basic {}", base64::encode(user_pass.as_bytes(), true))
}

/// `--backend-auth USER:PASS`, checked, as the Authorization value camtls
/// sends the camera. Errors never repeat the text: it holds a password.
pub fn backend_auth(user_pass: &str) -> Result<String, String> {
    let (user, _) = user_pass
        .split_once(':')
        .ok_or("expected USER:PASS (the text is not shown: it may hold a password)")?;
    if user.is_empty() {
        return Err(String::from("expected USER:PASS; the user is empty"));
    }
    if user_pass.chars().any(|c| c.is_control()) {
        return Err(String::from(
            "USER:PASS contains a control character (a stray newline?)",
        ));
    }
    Ok(basic_credentials(user_pass))
}

/// `--backend-auth-file FILE`: one line `USER:PASS`, as [`backend_auth`].
/// The newline at its end is dropped and nothing else is trimmed (a password
/// may end in a space). See [`permission_warning`](crate::auth::secret_file::permission_warning) for the file's mode.
pub fn load_backend_auth(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta =
        fs::metadata(path).map_err(|e| format!("cannot read backend auth file {shown}: {e}"))?;
    if meta.len() > 4096 {
        return Err(format!(
            "backend auth file {shown} is larger than 4 KiB: it should hold one line USER:PASS"
        ));
    }
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read backend auth file {shown}: {e}"))?;
    let line = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    backend_auth(line).map_err(|why| format!("backend auth file {shown}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::secret_file::permission_warning;
    use crate::auth::temp_file;

    #[test]
    fn backend_credentials() {
        // RFC 7617 section 2's example.
        assert_eq!(
            basic_credentials("Aladdin:open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(backend_auth("admin:").unwrap(), "Basic YWRtaW46");
        assert_eq!(
            backend_auth("admin:a:b").unwrap(),
            basic_credentials("admin:a:b")
        );
        for bad in ["adminsecret", ":secret", "admin:sec\nret", "admin:secret\r"] {
            let e = backend_auth(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn backend_auth_file() {
        let path = temp_file("backend", b"admin:pass word \n", 0o600);
        assert_eq!(
            load_backend_auth(&path).unwrap(),
            basic_credentials("admin:pass word ")
        );
        assert_eq!(permission_warning("backend auth file", &path), None);
        let crlf = temp_file("backend-crlf", b"admin:pw\r\n", 0o640);
        assert_eq!(
            load_backend_auth(&crlf).unwrap(),
            basic_credentials("admin:pw")
        );
        assert!(permission_warning("backend auth file", &crlf)
            .unwrap()
            .contains("640"));
        let two = temp_file("backend-two", b"admin:pw\nother:pw\n", 0o600);
        let e = load_backend_auth(&two).unwrap_err();
        assert!(e.contains("backend-two") && e.contains("control"), "{e}");
        let none = temp_file("backend-none", b"adminpw\n", 0o600);
        let e = load_backend_auth(&none).unwrap_err();
        assert!(e.contains("USER:PASS") && !e.contains("adminpw"), "{e}");
        let e = load_backend_auth(&path.with_file_name("absent")).unwrap_err();
        assert!(e.contains("absent"), "{e}");
    }
}
