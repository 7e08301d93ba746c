//! Password hashes for `camtls hash-password` and the auth file:
//! PBKDF2-HMAC-SHA256 in the PHC string form
//! `$pbkdf2-sha256$i=ITERATIONS$SALT$HASH` (standard base64, no padding),
//! 16 random bytes of salt and a 32-byte hash.
//!
//! Why PBKDF2 and not scrypt: the static router builds configure OpenSSL with
//! `no-scrypt` (mk/openssl.sh) and OpenWrt's libopenssl is not guaranteed to
//! carry it either, and scrypt at its usual cost (N=2^14, r=8) needs 16 MiB
//! per verification, a large bite of a 32 MB router. PBKDF2 needs no memory
//! and is in every OpenSSL.
//!
//! Why [`DEFAULT_ITERATIONS`] is 10,000, far below the 600,000 that OWASP
//! asks of a server: camtls is single-threaded, so a verification stalls every
//! stream for its whole duration, and every wrong password an attacker sends
//! costs one. One PBKDF2-SHA256 iteration is 9,274 MIPS32r2 instructions
//! with the static build's OpenSSL (`no-asm`; counted under qemu-mipsel, see
//! docs/security.md), so 10,000 iterations are about 93 million instructions:
//! 0.2 to 0.3 s on a 500 MHz MIPS 24Kc, 7 to 8 ms on a current x86-64 with
//! SHA extensions. A browser sends the password with every request, so a
//! success is remembered (see [`CACHE_SIZE`](crate::auth::users::CACHE_SIZE))
//! and later requests cost one SHA-256. The hash only matters if the auth
//! file itself leaks; a long random password is what keeps it safe then.

use std::fmt;

use openssl::hash::MessageDigest;
use openssl::memcmp;

use crate::auth::base64;

/// PBKDF2 iterations for new hashes; see the module comment for the cost.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Fewer iterations than this are refused in an auth file: such a hash was
/// not made by camtls and is too cheap to attack if the file leaks.
pub const MIN_ITERATIONS: u32 = 1_000;
/// More than this is refused: about 12 s of stalled streams per login attempt
/// on a router, so a typo or a hostile file cannot turn logins into a
/// denial of service. It is OWASP's figure, for installs on a PC.
pub const MAX_ITERATIONS: u32 = 600_000;
pub(crate) const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const SCHEME: &str = "$pbkdf2-sha256$";

/// A parsed `$pbkdf2-sha256$...` hash.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PasswordHash {
    pub(crate) iterations: u32,
    pub(crate) salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl PasswordHash {
    /// A hash of this one's cost and salt length, with a fresh salt, that no
    /// password is expected to match: verified in place of an unknown user's,
    /// so that an unknown name costs what a known one does.
    pub(crate) fn decoy(&self) -> Result<PasswordHash, String> {
        let mut salt = vec![0u8; self.salt.len()];
        openssl::rand::rand_bytes(&mut salt).map_err(|e| format!("no random bytes: {e}"))?;
        Ok(PasswordHash {
            iterations: self.iterations,
            salt,
            hash: [0u8; HASH_LEN],
        })
    }

    fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Result<[u8; HASH_LEN], String> {
        let mut out = [0u8; HASH_LEN];
        openssl::pkcs5::pbkdf2_hmac(
            password,
            salt,
            iterations as usize,
            MessageDigest::sha256(),
            &mut out,
        )
        .map_err(|e| format!("PBKDF2 failed: {e}"))?;
        Ok(out)
    }

    /// Constant time in the password: the whole hash is computed and compared
    /// whatever the input.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match PasswordHash::derive(password, &self.salt, self.iterations) {
            Ok(candidate) => memcmp::eq(&candidate, &self.hash),
            Err(_) => false,
        }
    }

    pub(crate) fn parse(text: &str) -> Result<PasswordHash, String> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| describe_foreign_hash(text))?;
        let mut parts = rest.split('$');
        let (Some(params), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(String::from(
                "malformed pbkdf2-sha256 hash: expected $pbkdf2-sha256$i=N$SALT$HASH",
            ));
        };
        let iterations: u32 = params
            .strip_prefix("i=")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                format!("malformed pbkdf2-sha256 parameters {params:?}: expected i=N")
            })?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "pbkdf2-sha256 with {iterations} iterations: camtls accepts \
                 {MIN_ITERATIONS} to {MAX_ITERATIONS}"
            ));
        }
        let salt = base64::decode(salt.as_bytes())
            .filter(|s| (8..=64).contains(&s.len()))
            .ok_or("malformed pbkdf2-sha256 salt: expected 8 to 64 bytes in base64")?;
        let hash = base64::decode(hash.as_bytes())
            .and_then(|h| <[u8; HASH_LEN]>::try_from(h).ok())
            .ok_or("malformed pbkdf2-sha256 hash: expected 32 bytes in base64")?;
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }
}

impl fmt::Debug for PasswordHash {
    // The cost only: a hash can be attacked offline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pbkdf2-sha256 i={}", self.iterations)
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}i={}${}${}",
            self.iterations,
            base64::encode(&self.salt, false),
            base64::encode(&self.hash, false)
        )
    }
}

/// Names a hash format camtls does not take, without repeating the text: it
/// may be a password typed where a hash belongs.
fn describe_foreign_hash(text: &str) -> String {
    let known = [
        ("$2a$", "bcrypt (htpasswd -B)"),
        ("$2b$", "bcrypt (htpasswd -B)"),
        ("$2y$", "bcrypt (htpasswd -B)"),
        ("$apr1$", "Apache MD5 (htpasswd -m)"),
        ("{SHA}", "unsalted SHA-1 (htpasswd -s)"),
        ("$1$", "MD5-crypt"),
        ("$5$", "SHA-256-crypt"),
        ("$6$", "SHA-512-crypt"),
        ("$argon2", "Argon2"),
        ("$scrypt$", "scrypt"),
        ("$7$", "scrypt"),
        ("$pbkdf2$", "PBKDF2-SHA1"),
        ("$pbkdf2-sha512$", "PBKDF2-SHA512"),
    ];
    let advice = "make the line with `camtls hash-password`";
    match known.iter().find(|(prefix, _)| text.starts_with(prefix)) {
        Some((_, name)) => format!("a {name} hash, which camtls does not read; {advice}"),
        None if text.starts_with('$') || text.starts_with('{') => {
            format!("an unknown hash format; {advice}")
        }
        None => format!("not a hash (a plaintext password?); camtls stores only hashes: {advice}"),
    }
}

/// A new hash of `password` for an auth file line, with a fresh random salt
/// and [`DEFAULT_ITERATIONS`].
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_password_with(password, DEFAULT_ITERATIONS)
}

/// As [`hash_password`] with a chosen iteration count (within
/// [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`]).
pub fn hash_password_with(password: &str, iterations: u32) -> Result<String, String> {
    if password.is_empty() {
        return Err(String::from("the password is empty"));
    }
    if password.contains('\0') {
        // It could never log in: see split_user_pass.
        return Err(String::from("the password contains a NUL byte"));
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(format!(
            "{iterations} iterations: expected {MIN_ITERATIONS} to {MAX_ITERATIONS}"
        ));
    }
    let mut salt = vec![0u8; SALT_LEN];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| format!("no random bytes: {e}"))?;
    let hash = PasswordHash::derive(password.as_bytes(), &salt, iterations)?;
    Ok(PasswordHash {
        iterations,
        salt,
        hash,
    }
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick_hash(password: &str) -> String {
        hash_password_with(password, MIN_ITERATIONS).unwrap()
    }

    #[test]
    fn hash_format_and_round_trip() {
        let line = hash_password("correct horse").unwrap();
        // $pbkdf2-sha256$i=10000$ + 22 chars of salt + $ + 43 chars of hash.
        assert!(line.starts_with("$pbkdf2-sha256$i=10000$"), "{line}");
        let fields: Vec<&str> = line.split('$').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!(fields[3].len(), 22);
        assert_eq!(fields[4].len(), 43);
        let parsed = PasswordHash::parse(&line).unwrap();
        assert_eq!(parsed.to_string(), line);
        assert_eq!(parsed.iterations, DEFAULT_ITERATIONS);
        assert!(parsed.verify(b"correct horse"));
        assert!(!parsed.verify(b"correct horse "));
        assert!(!parsed.verify(b""));
        // A fresh salt each time.
        assert_ne!(hash_password("correct horse").unwrap(), line);
    }

    #[test]
    fn hash_matches_an_independent_pbkdf2() {
        // RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector: P="passwd",
        // S="salt", c=1, first 32 bytes. Built by hand in the PHC form, with
        // the iteration floor lifted for this one check.
        let expected = [
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
            0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57,
            0xc2, 0x0d, 0xac, 0xbc,
        ];
        assert_eq!(
            PasswordHash::derive(b"passwd", b"salt", 1).unwrap(),
            expected
        );
    }

    #[test]
    fn hashing_refuses_empty_passwords_and_odd_costs() {
        assert!(hash_password("").is_err());
        assert!(hash_password("pw\0").unwrap_err().contains("NUL"));
        assert!(hash_password_with("x", MIN_ITERATIONS - 1).is_err());
        assert!(hash_password_with("x", MAX_ITERATIONS + 1).is_err());
        assert!(hash_password_with("x", MAX_ITERATIONS).is_ok());
    }

    #[test]
    fn hash_parse_errors() {
        let good = quick_hash("pw");
        let f: Vec<&str> = good.split('$').collect();
        let (salt, hash) = (f[3], f[4]);
        let cases = [
            (format!("$pbkdf2-sha256$i=999${salt}${hash}"), "iterations"),
            (
                format!("$pbkdf2-sha256$i=600001${salt}${hash}"),
                "iterations",
            ),
            (format!("$pbkdf2-sha256$i=x${salt}${hash}"), "i=N"),
            (format!("$pbkdf2-sha256$n=1000${salt}${hash}"), "i=N"),
            (format!("$pbkdf2-sha256$i=1000${salt}"), "expected $pbkdf2"),
            (
                format!("$pbkdf2-sha256$i=1000${salt}${hash}$x"),
                "expected $pbkdf2",
            ),
            (format!("$pbkdf2-sha256$i=1000$!!!!${hash}"), "salt"),
            (format!("$pbkdf2-sha256$i=1000$c2FsdA${hash}"), "salt"),
            (
                format!("$pbkdf2-sha256$i=1000${salt}${}", &hash[..40]),
                "32 bytes",
            ),
            (
                format!("$pbkdf2-sha256$i=1000${salt}${hash}AAAA"),
                "32 bytes",
            ),
        ];
        for (text, needle) in cases {
            let e = PasswordHash::parse(&text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn foreign_formats_are_named_and_never_echoed() {
        let cases = [
            ("$2y$05$abcdefghijklmnopqrstuv", "bcrypt"),
            ("$apr1$salt$hash", "Apache MD5"),
            ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
            ("$6$salt$hash", "SHA-512-crypt"),
            ("$argon2id$v=19$m=65536", "Argon2"),
            ("$something$else", "unknown hash format"),
            ("hunter2secret", "plaintext"),
        ];
        for (text, needle) in cases {
            let e = PasswordHash::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains(text), "the error repeats the value: {e}");
        }
    }
}
