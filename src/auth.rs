//! Logins and who may connect: password hashes for `camtls hash-password`,
//! the `--auth-file` users and their HTTP Basic check, the camera's own
//! credentials for `--backend-auth`, `--allow` address ranges, and the lockout
//! of addresses that keep failing. Everything here is single-threaded and
//! takes no locks; time is passed in where tests need to control it.
//!
//! # Password hashes
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
//! success is remembered (see [`CACHE_SIZE`]) and later requests cost one
//! SHA-256. The hash only matters if the auth file itself leaks; a long random
//! password is what keeps it safe then.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::sha::{sha256, Sha256};

/// PBKDF2 iterations for new hashes; see the module comment for the cost.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Fewer iterations than this are refused in an auth file: such a hash was
/// not made by camtls and is too cheap to attack if the file leaks.
pub const MIN_ITERATIONS: u32 = 1_000;
/// More than this is refused: about 12 s of stalled streams per login attempt
/// on a router, so a typo or a hostile file cannot turn logins into a
/// denial of service. It is OWASP's figure, for installs on a PC.
pub const MAX_ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const SCHEME: &str = "$pbkdf2-sha256$";

/// Longest Authorization value looked at. A real `Basic` value for a
/// 64-byte user name and a 256-byte password is about 430 bytes; anything
/// longer is answered Wrong without decoding it.
pub const MAX_AUTHORIZATION_LEN: usize = 1024;
/// Longest user name `hash-password` writes and an auth file may hold.
pub const MAX_USER_LEN: usize = 64;
/// An auth file larger than this is refused: it is a list of a few users, and
/// a wrong path (a log, a firmware image) should not be read into memory.
pub const MAX_AUTH_FILE_LEN: u64 = 64 * 1024;

/// Verified logins remembered, so that the slow hash runs once per viewer
/// and not once per request. Keyed by a keyed SHA-256 of the whole
/// Authorization value; 32 entries of about 80 bytes each.
pub const CACHE_SIZE: usize = 32;
/// How long a verified login is remembered. After that one request pays the
/// slow hash again. A newly loaded [`Users`] starts with none.
pub const CACHE_TTL: Duration = Duration::from_secs(600);

/// The `WWW-Authenticate` value sent with a 401.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"camtls\", charset=\"UTF-8\"";

// ---------------------------------------------------------------------------
// Password hashes

/// A parsed `$pbkdf2-sha256$...` hash.
#[derive(Clone, PartialEq, Eq)]
struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl PasswordHash {
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
    fn verify(&self, password: &[u8]) -> bool {
        match PasswordHash::derive(password, &self.salt, self.iterations) {
            Ok(candidate) => memcmp::eq(&candidate, &self.hash),
            Err(_) => false,
        }
    }

    fn parse(text: &str) -> Result<PasswordHash, String> {
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
        let salt = base64_decode(salt.as_bytes())
            .filter(|s| (8..=64).contains(&s.len()))
            .ok_or("malformed pbkdf2-sha256 salt: expected 8 to 64 bytes in base64")?;
        let hash = base64_decode(hash.as_bytes())
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
            base64_encode(&self.salt, false),
            base64_encode(&self.hash, false)
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

/// Whether `name` can stand in an auth file and in a Basic login: 1 to 64
/// bytes, no colon (Basic splits at the first one), no spaces or control
/// characters, not starting with `#`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(String::from("the user name is empty"));
    }
    if name.len() > MAX_USER_LEN {
        return Err(format!("the user name is longer than {MAX_USER_LEN} bytes"));
    }
    if name.contains(':') {
        return Err(String::from(
            "the user name contains ':', which HTTP Basic uses as the separator",
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(String::from(
            "the user name contains a space or control character",
        ));
    }
    if name.starts_with('#') {
        return Err(String::from(
            "the user name starts with '#', which marks a comment",
        ));
    }
    Ok(())
}

/// One auth file line, `user:hash`, without the newline.
pub fn format_line(user: &str, hash: &str) -> String {
    format!("{user}:{hash}")
}

// ---------------------------------------------------------------------------
// The auth file and the Basic check

/// What a request's Authorization header proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// A user of the auth file with the right password.
    Ok(String),
    /// No Basic credentials: no header, an empty one, or another scheme.
    /// Answer 401 with [`WWW_AUTHENTICATE`]; not a failed login.
    Missing,
    /// Basic credentials that are wrong or malformed: a failed login, to be
    /// counted by [`Lockout`].
    Wrong,
}

struct User {
    name: String,
    name_digest: [u8; 32],
    hash: PasswordHash,
}

struct CacheEntry {
    key: [u8; 32],
    user: usize,
    expires: Instant,
}

/// The users of an auth file, and the logins verified recently.
pub struct Users {
    users: Vec<User>,
    /// Verified in place of an unknown user's hash, with the parameters of the
    /// file's first user, so that an unknown name costs what a known one does.
    decoy: PasswordHash,
    /// Random per process: a cache key in a core dump is not an unsalted
    /// fast hash of a password.
    cache_secret: [u8; 32],
    cache: RefCell<Vec<CacheEntry>>,
    slow_checks: Cell<u64>,
}

impl fmt::Debug for Users {
    // Names only: hashes stay out of any debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// Reads an auth file: `user:hash` lines as `camtls hash-password`
    /// writes them, `#` comments and blank lines. Errors name the file and
    /// line and never repeat what stood after the colon.
    pub fn load(path: &Path) -> Result<Users, String> {
        let shown = path.display();
        let meta = fs::metadata(path).map_err(|e| format!("cannot read auth file {shown}: {e}"))?;
        if meta.len() > MAX_AUTH_FILE_LEN {
            return Err(format!(
                "auth file {shown} is larger than {} KiB: is it the right file?",
                MAX_AUTH_FILE_LEN / 1024
            ));
        }
        let bytes = fs::read(path).map_err(|e| format!("cannot read auth file {shown}: {e}"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("auth file {shown} is not UTF-8 text"))?;
        Users::parse(&text, &shown.to_string())
    }

    /// As [`Users::load`], from text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Users, String> {
        let mut users: Vec<User> = Vec::new();
        let mut lines_of: Vec<usize> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |why: String| format!("auth file {origin} line {n}: {why}");
            let (name, hash) = line.split_once(':').ok_or_else(|| {
                at(String::from(
                    "expected user:hash; make the line with `camtls hash-password`",
                ))
            })?;
            check_user_name(name).map_err(at)?;
            let hash = PasswordHash::parse(hash.trim())
                .map_err(|why| at(format!("user {name}: {why}")))?;
            if let Some(j) = users.iter().position(|u| u.name == name) {
                return Err(at(format!(
                    "user {name} is already on line {}",
                    lines_of[j]
                )));
            }
            users.push(User {
                name: name.to_string(),
                name_digest: sha256(name.as_bytes()),
                hash,
            });
            lines_of.push(n);
        }
        let first = users.first().ok_or_else(|| {
            format!(
                "auth file {origin} has no users: nobody could log in; add one with \
                 `camtls hash-password`"
            )
        })?;
        let mut salt = vec![0u8; first.hash.salt.len()];
        let mut cache_secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut salt)
            .and_then(|()| openssl::rand::rand_bytes(&mut cache_secret))
            .map_err(|e| format!("no random bytes: {e}"))?;
        let decoy = PasswordHash {
            iterations: first.hash.iterations,
            salt,
            hash: [0u8; HASH_LEN],
        };
        Ok(Users {
            users,
            decoy,
            cache_secret,
            cache: RefCell::new(Vec::with_capacity(CACHE_SIZE)),
            slow_checks: Cell::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|u| u.name.as_str())
    }

    /// How many slow (PBKDF2) verifications have run: each costs
    /// [`DEFAULT_ITERATIONS`]-scale CPU time, a cached login costs none.
    pub fn slow_checks(&self) -> u64 {
        self.slow_checks.get()
    }

    /// Checks the raw value of a request's Authorization header.
    pub fn check(&self, authorization: Option<&[u8]>) -> AuthResult {
        self.check_at(authorization, Instant::now())
    }

    /// As [`Users::check`], at a given time (the cache's clock).
    pub fn check_at(&self, authorization: Option<&[u8]>, now: Instant) -> AuthResult {
        let (value, token) = match basic_value(authorization) {
            Ok(found) => found,
            Err(result) => return result,
        };
        let key = self.cache_key(value);
        if let Some(user) = self.cached(&key, now) {
            if let Some(u) = self.users.get(user) {
                return AuthResult::Ok(u.name.clone());
            }
        }
        let Some(decoded) = base64_decode(token) else {
            return AuthResult::Wrong;
        };
        let Some((name, password)) = split_user_pass(&decoded) else {
            return AuthResult::Wrong;
        };
        // Every entry is compared, and a hash is verified whether or not the
        // name exists, so timing tells nothing about which names do.
        let digest = sha256(name);
        let mut found = None;
        for (i, user) in self.users.iter().enumerate() {
            if memcmp::eq(&digest, &user.name_digest) {
                found = Some(i);
            }
        }
        let user = found.and_then(|i| Some((i, self.users.get(i)?)));
        let hash = user.map_or(&self.decoy, |(_, u)| &u.hash);
        self.slow_checks.set(self.slow_checks.get() + 1);
        let matches = hash.verify(password);
        match user {
            Some((i, u)) if matches => {
                self.remember(key, i, now);
                AuthResult::Ok(u.name.clone())
            }
            _ => AuthResult::Wrong,
        }
    }

    fn cache_key(&self, value: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.cache_secret);
        h.update(value);
        h.finish()
    }

    fn cached(&self, key: &[u8; 32], now: Instant) -> Option<usize> {
        let mut cache = self.cache.borrow_mut();
        cache.retain(|e| e.expires > now);
        cache
            .iter()
            .find(|e| memcmp::eq(&e.key, key))
            .map(|e| e.user)
    }

    fn remember(&self, key: [u8; 32], user: usize, now: Instant) {
        let mut cache = self.cache.borrow_mut();
        cache.retain(|e| e.expires > now);
        if cache.len() >= CACHE_SIZE {
            // Full of live entries: the one closest to expiry goes.
            if let Some(oldest) = (0..cache.len()).min_by_key(|&i| cache[i].expires) {
                cache.swap_remove(oldest);
            }
        }
        cache.push(CacheEntry {
            key,
            user,
            expires: now + CACHE_TTL,
        });
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// What an Authorization value holds, before any password is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basic {
    /// No header, an empty one, or a scheme other than Basic: answered 401
    /// with the challenge, not counted as a failed login.
    Missing,
    /// Basic, but too long, not strict base64, without a colon, or with a NUL
    /// byte in the password: a failed login, found without a slow hash.
    Malformed,
    /// The user (never holding a colon) and the password, as sent.
    Credentials { user: Vec<u8>, password: Vec<u8> },
}

/// Reads an Authorization value exactly as [`Users::check`] does, without
/// checking any password.
pub fn parse_basic(authorization: Option<&[u8]>) -> Basic {
    let token = match basic_value(authorization) {
        Ok((_, token)) => token,
        Err(AuthResult::Missing) => return Basic::Missing,
        Err(_) => return Basic::Malformed,
    };
    let Some(decoded) = base64_decode(token) else {
        return Basic::Malformed;
    };
    match split_user_pass(&decoded) {
        Some((user, password)) => Basic::Credentials {
            user: user.to_vec(),
            password: password.to_vec(),
        },
        None => Basic::Malformed,
    }
}

/// The cheap part of a Basic check: the trimmed value (the cache key) and
/// its base64 token, or what to answer without decoding anything.
fn basic_value(authorization: Option<&[u8]>) -> Result<(&[u8], &[u8]), AuthResult> {
    let value = authorization.ok_or(AuthResult::Missing)?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthResult::Wrong);
    }
    let value = trim_ows(value);
    if value.is_empty() {
        return Err(AuthResult::Missing);
    }
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(i) => {
            let (scheme, rest) = value.split_at(i);
            (scheme, trim_ows(rest))
        }
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(AuthResult::Missing);
    }
    Ok((value, token))
}

/// A decoded Basic token as `(user, password)`, split at the first colon
/// (RFC 7617 section 2). A password holding a NUL byte is refused: HMAC pads
/// its key with zeros, so PBKDF2 takes `pw`, `pw\0` and `pw\0\0` for the
/// same password, and no keyboard types one.
fn split_user_pass(decoded: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, rest) = decoded.split_at(colon);
    let password = rest.get(1..)?;
    (!password.contains(&0)).then_some((user, password))
}

/// Optional whitespace around a header value or after the scheme (RFC 9110
/// section 5.6.3).
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

// ---------------------------------------------------------------------------
// The camera's own credentials

/// The Authorization value for `USER:PASS` (RFC 7617), unchecked.
pub fn basic_credentials(user_pass: &str) -> String {
    format!("Basic {}", base64_encode(user_pass.as_bytes(), true))
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
/// may end in a space). See [`permission_warning`] for the file's mode.
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

/// A warning for a secret file (auth file, backend auth file) that group or
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

// ---------------------------------------------------------------------------
// Address ranges

/// One `--allow` range: an address with a prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `192.168.0.0/16`, `10.1.2.3` (one address), `2001:db8::/32`, `::1`.
    /// IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) become IPv4 ranges, as
    /// mapped clients are matched as IPv4. Host bits must be zero, so that
    /// `192.168.1.5/24` is not taken for one address or for the network by
    /// guess.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!(
                "{text:?}: expected an address or ADDRESS/PREFIX, e.g. 192.168.1.0/24, \
                 10.1.2.3, 2001:db8::/32"
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        let cidr = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                },
                None => Cidr { addr, prefix },
            },
            _ => Cidr { addr, prefix },
        };
        let masked = mask(cidr.addr, cidr.prefix);
        if masked != cidr.addr {
            return Err(format!(
                "{text:?} has bits set past the prefix: write {masked}/{} for the network, \
                 or {addr_text} alone for one address",
                cidr.prefix
            ));
        }
        Ok(cidr)
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length, at most 32 for IPv4 and 128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack listener
/// reports IPv4 clients) as the IPv4 address it is. `::1` and other IPv6
/// addresses stay IPv6.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            // Saturating: a prefix past the width keeps every bit.
            let bits = u32::MAX
                .checked_shl(32u32.saturating_sub(prefix.into()))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX
                .checked_shl(128u32.saturating_sub(prefix.into()))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & bits))
        }
    }
}

/// The `--allow` list of a route. Empty means no restriction (no `--allow`
/// given); otherwise a client must be inside at least one range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allow {
    ranges: Vec<Cidr>,
}

impl Allow {
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Allow, String> {
        let ranges = specs
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Allow { ranges })
    }

    pub fn push(&mut self, range: Cidr) {
        self.ranges.push(range);
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.ranges.is_empty() || self.ranges.iter().any(|r| r.contains(ip))
    }
}

// ---------------------------------------------------------------------------
// Lockout

/// When failed logins lock an address out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that block an address...
    pub max_failures: u32,
    /// ...when they fall within this long of the first one.
    pub window: Duration,
    /// How long a blocked address is refused.
    pub block: Duration,
    /// Most addresses tracked at once: the table's memory is bounded by this
    /// (at most about 130 bytes an entry with the hash table's spare room, so
    /// 130 KiB at 1024), however many addresses an attacker has.
    pub capacity: usize,
}

impl Default for LockoutPolicy {
    /// 5 failures in 60 s block for 5 minutes; 1024 addresses tracked. A
    /// guesser gets at most 5 tries per 5 minutes per address (1,440 a
    /// day), and at most 5 slow verifications of CPU per address per block.
    fn default() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(60),
            block: Duration::from_secs(300),
            capacity: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    failures: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

impl Strikes {
    /// Nothing left to remember: not blocked, and the window has passed.
    fn stale(&self, now: Instant, policy: &LockoutPolicy) -> bool {
        match self.blocked_until {
            Some(until) => now >= until,
            None => now.duration_since(self.first) >= policy.window,
        }
    }
}

/// Failed logins per client address. IPv6 clients are counted per /64, the
/// block a single home or host is given, so that rotating through one's own
/// addresses does not reset the count; mapped IPv4 counts as IPv4.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    table: HashMap<IpAddr, Strikes>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Lockout {
        Lockout {
            policy,
            table: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Addresses tracked now (never more than the policy's capacity).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn key(ip: IpAddr) -> IpAddr {
        match canonical(ip) {
            v6 @ IpAddr::V6(_) => mask(v6, 64),
            v4 => v4,
        }
    }

    /// How much longer `ip` is refused, if it is. Check before the TLS
    /// handshake or before verifying a password.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = Lockout::key(ip);
        let until = self.table.get(&key)?.blocked_until?;
        if now >= until {
            self.table.remove(&key);
            return None;
        }
        Some(until - now)
    }

    pub fn is_blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.blocked(ip, now).is_some()
    }

    /// Counts a failed login (an [`AuthResult::Wrong`]); true when `ip` is
    /// blocked after it.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = Lockout::key(ip);
        if !self.table.contains_key(&key) {
            self.make_room(now);
        }
        let policy = self.policy;
        let strikes = self.table.entry(key).or_insert(Strikes {
            failures: 0,
            first: now,
            blocked_until: None,
        });
        if let Some(until) = strikes.blocked_until {
            if now < until {
                return true;
            }
        }
        if strikes.stale(now, &policy) {
            *strikes = Strikes {
                failures: 0,
                first: now,
                blocked_until: None,
            };
        }
        strikes.failures += 1;
        if strikes.failures >= policy.max_failures {
            strikes.blocked_until = Some(now + policy.block);
            log::warn!(
                "{} failed logins from {key}{}: refused for {} s",
                strikes.failures,
                if key.is_ipv6() { "/64" } else { "" },
                policy.block.as_secs()
            );
            return true;
        }
        false
    }

    /// A successful login forgets the address's failures.
    pub fn success(&mut self, ip: IpAddr) {
        self.table.remove(&Lockout::key(ip));
    }

    /// Keeps the table under its capacity before a new address goes in:
    /// stale entries go first, then the unblocked entry whose window started
    /// earliest, and only when every entry is blocked, the block that ends
    /// soonest. So an attacker cycling through addresses cannot free a
    /// blocked one while unblocked ones remain.
    fn make_room(&mut self, now: Instant) {
        if self.table.len() < self.policy.capacity {
            return;
        }
        let policy = self.policy;
        self.table.retain(|_, s| !s.stale(now, &policy));
        while self.table.len() >= policy.capacity.max(1) {
            let victim = self
                .table
                .iter()
                .min_by_key(|(_, s)| (s.blocked_until.is_some(), s.blocked_until, s.first))
                .map(|(k, _)| *k);
            match victim {
                Some(k) => self.table.remove(&k),
                None => break,
            };
        }
    }
}

// ---------------------------------------------------------------------------
// Base64 (RFC 4648, standard alphabet), strict: a byte outside the alphabet,
// misplaced padding or a length no encoder makes is refused.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(data: &[u8], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes with or without `=` padding.
pub(crate) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let body = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] if text.len() % 4 == 0 => rest,
        _ => text,
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero, or two texts would decode the same.
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test hashes use the lowest accepted cost so the suite stays fast; the
    /// code paths are the same.
    fn quick_hash(password: &str) -> String {
        hash_password_with(password, MIN_ITERATIONS).unwrap()
    }

    fn users(list: &[(&str, &str)]) -> Users {
        let text: String = list
            .iter()
            .map(|(u, p)| format_line(u, &quick_hash(p)) + "\n")
            .collect();
        Users::parse(&text, "test").unwrap()
    }

    fn basic(user_pass: &[u8]) -> Vec<u8> {
        format!("Basic {}", base64_encode(user_pass, true)).into_bytes()
    }

    fn temp_file(name: &str, content: &[u8], mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("camtls-auth-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ];
        for (plain, padded, bare) in vectors {
            assert_eq!(base64_encode(plain.as_bytes(), true), padded);
            assert_eq!(base64_encode(plain.as_bytes(), false), bare);
            assert_eq!(base64_decode(padded.as_bytes()).unwrap(), plain.as_bytes());
            assert_eq!(base64_decode(bare.as_bytes()).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            base64_decode(base64_encode(&all, true).as_bytes()).unwrap(),
            all
        );
        for bad in [
            "Z", "Zg=", "Zg===", "=Zg=", "Zm 9v", "Zm9v\n", "Zm-_", "Zh==", "Zm9=v",
        ] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad:?}");
        }
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

    #[test]
    fn auth_file_comments_blank_lines_and_crlf() {
        let text = format!(
            "# cameras\n\n   \r\nalice:{}\r\n  # bob left\n  bob:{}  \n",
            quick_hash("a"),
            quick_hash("b")
        );
        let u = Users::parse(&text, "f").unwrap();
        assert_eq!(u.names().collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(
            u.check(Some(&basic(b"alice:a"))),
            AuthResult::Ok("alice".into())
        );
        assert_eq!(
            u.check(Some(&basic(b"bob:b"))),
            AuthResult::Ok("bob".into())
        );
        assert!(!format!("{u:?}").contains("pbkdf2"), "{u:?}");
    }

    #[test]
    fn auth_file_errors_name_file_and_line() {
        let h = quick_hash("x");
        let cases = [
            (
                format!("# c\nalice:{h}\nbob\n"),
                "line 3",
                "expected user:hash",
            ),
            (format!("alice:{h}\n:{h}\n"), "line 2", "user name is empty"),
            (
                format!("\nalice:{h}\nalice:{h}\n"),
                "line 3",
                "already on line 2",
            ),
            ("alice:s3cret-pw\n".to_string(), "line 1", "plaintext"),
            ("alice:$2y$05$abc\n".to_string(), "line 1", "bcrypt"),
            (format!("al ice:{h}\n"), "line 1", "space"),
            (
                format!("{}:{h}\n", "a".repeat(65)),
                "line 1",
                "longer than 64",
            ),
            (
                "# only comments\n\n".to_string(),
                "no users",
                "hash-password",
            ),
            (String::new(), "no users", "nobody could log in"),
        ];
        for (text, place, why) in cases {
            let e = Users::parse(&text, "/etc/camtls/users").unwrap_err();
            assert!(e.contains("/etc/camtls/users"), "{e}");
            assert!(e.contains(place) && e.contains(why), "{text:?}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let path = temp_file(
            "users",
            format_line("cam", &quick_hash("pw")).as_bytes(),
            0o600,
        );
        let u = Users::load(&path).unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(permission_warning("auth file", &path), None);
        let missing = path.with_file_name("nope");
        let e = Users::load(&missing).unwrap_err();
        assert!(e.contains("nope") && e.contains("cannot read"), "{e}");
        let binary = temp_file("binary", b"cam:\xff\xfe\n", 0o600);
        assert!(Users::load(&binary).unwrap_err().contains("not UTF-8"));
        let big = temp_file("big", &vec![b'#'; MAX_AUTH_FILE_LEN as usize + 1], 0o600);
        assert!(Users::load(&big).unwrap_err().contains("larger than"));
        let open = temp_file("open", b"cam:x", 0o644);
        let w = permission_warning("auth file", &open).unwrap();
        assert!(w.contains("644") && w.contains("chmod 600"), "{w}");
    }

    #[test]
    fn check_accepts_the_right_password_only() {
        let u = users(&[("alice", "pa:ss word"), ("bob", "ümlaut")]);
        let ok = |s: &str| AuthResult::Ok(s.to_string());
        // The password may hold a colon: Basic splits at the first one.
        assert_eq!(u.check(Some(&basic(b"alice:pa:ss word"))), ok("alice"));
        assert_eq!(u.check(Some(&basic("bob:ümlaut".as_bytes()))), ok("bob"));
        assert_eq!(u.check(Some(&basic(b"alice:pa:ss wor"))), AuthResult::Wrong);
        assert_eq!(u.check(Some(&basic(b"alice:"))), AuthResult::Wrong);
        assert_eq!(u.check(Some(&basic(b"bob:pa:ss word"))), AuthResult::Wrong);
        assert_eq!(
            u.check(Some(&basic(b"Alice:pa:ss word"))),
            AuthResult::Wrong
        );
        assert_eq!(
            u.check(Some(&basic(b"carol:pa:ss word"))),
            AuthResult::Wrong
        );
        // Scheme in any case, spaces around the token (RFC 9110 OWS).
        let token = base64_encode(b"alice:pa:ss word", true);
        for v in [
            format!("basic {token}"),
            format!("BASIC {token}"),
            format!(" Basic   {token}\t"),
        ] {
            assert_eq!(u.check(Some(v.as_bytes())), ok("alice"), "{v:?}");
        }
        // Unpadded base64 decodes to the same credentials.
        let bare = format!("Basic {}", base64_encode(b"alice:pa:ss word", false));
        assert_eq!(u.check(Some(bare.as_bytes())), ok("alice"));
    }

    #[test]
    fn check_missing_and_other_schemes() {
        let u = users(&[("alice", "pw")]);
        assert_eq!(u.check(None), AuthResult::Missing);
        assert_eq!(u.check(Some(b"")), AuthResult::Missing);
        assert_eq!(u.check(Some(b"   ")), AuthResult::Missing);
        assert_eq!(u.check(Some(b"Bearer abc.def")), AuthResult::Missing);
        assert_eq!(
            u.check(Some(b"Digest username=\"alice\"")),
            AuthResult::Missing
        );
        assert_eq!(u.check(Some(b"Basicx YWxpY2U6cHc=")), AuthResult::Missing);
        assert_eq!(u.slow_checks(), 0);
    }

    #[test]
    fn check_malformed_values_are_wrong_without_a_slow_hash() {
        let u = users(&[("alice", "pw")]);
        let huge = format!("Basic {}", "QUFB".repeat(MAX_AUTHORIZATION_LEN));
        let cases: Vec<Vec<u8>> = vec![
            b"Basic".to_vec(),
            b"Basic ".to_vec(),
            b"Basic !!notbase64!!".to_vec(),
            b"Basic YWxpY2U6cHc=YWxp".to_vec(),
            b"Basic YWxpY2U6cH=".to_vec(),
            basic(b"alicepw"),
            basic(b""),
            b"Basic \xff\xfe".to_vec(),
            huge.into_bytes(),
            // PBKDF2 would take each of these for "pw" (HMAC pads its key
            // with zeros): found by the authorization fuzz target.
            basic(b"alice:pw\0"),
            basic(b"alice:pw\0\0"),
            basic(b"alice:p\0w"),
        ];
        for v in &cases {
            assert_eq!(
                u.check(Some(v)),
                AuthResult::Wrong,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
        assert_eq!(u.slow_checks(), 0);
        // Well-formed but not UTF-8: a slow check like any wrong login, and
        // no panic.
        assert_eq!(u.check(Some(&basic(b"alice:\xff\xfe"))), AuthResult::Wrong);
        assert_eq!(u.check(Some(&basic(b"\xff\xfe:pw"))), AuthResult::Wrong);
        assert_eq!(u.check(Some(&basic(b":pw"))), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 3);
        // At the limit a value is still looked at; one byte more (here a
        // trailing space) and it is not.
        let pad = "x".repeat((MAX_AUTHORIZATION_LEN - 6) / 4 * 3 - "alice:".len());
        let mut near = basic(format!("alice:{pad}").as_bytes());
        near.resize(MAX_AUTHORIZATION_LEN, b' ');
        assert_eq!(u.check(Some(&near)), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 4);
        near.push(b' ');
        assert_eq!(u.check(Some(&near)), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 4);
    }

    #[test]
    fn unknown_users_pay_the_same_slow_hash() {
        let u = users(&[("alice", "pw"), ("bob", "pw2")]);
        assert_eq!(u.decoy.iterations, MIN_ITERATIONS);
        assert_eq!(u.decoy.salt.len(), SALT_LEN);
        assert_eq!(u.check(Some(&basic(b"mallory:pw"))), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 1);
        assert_eq!(u.check(Some(&basic(b"alice:nope"))), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 2);
        // The decoy carries the users' iteration count, whatever it is.
        let text = format!("x:{}\n", hash_password_with("pw", 4321).unwrap());
        assert_eq!(Users::parse(&text, "t").unwrap().decoy.iterations, 4321);
    }

    #[test]
    #[ignore = "a timing measurement: run with --ignored on a quiet machine; \
                the test above checks the same by counting slow checks"]
    fn unknown_and_known_users_take_the_same_time() {
        // Real cost, so that the hash dominates. Medians of interleaved runs;
        // the bound is loose because the test machine is shared.
        let text = format!("alice:{}\n", hash_password_with("pw", 20_000).unwrap());
        let u = Users::parse(&text, "t").unwrap();
        let time = |v: &[u8]| {
            let t = Instant::now();
            assert_eq!(u.check(Some(v)), AuthResult::Wrong);
            t.elapsed()
        };
        let (known, unknown) = (basic(b"alice:guess"), basic(b"nobody-here:guess"));
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..7 {
            a.push(time(&known));
            b.push(time(&unknown));
        }
        a.sort();
        b.sort();
        let ratio = a[3].as_secs_f64() / b[3].as_secs_f64();
        assert!(
            (0.67..1.5).contains(&ratio),
            "known {:?} unknown {:?}",
            a[3],
            b[3]
        );
    }

    #[test]
    fn cache_spares_the_slow_hash_then_expires() {
        let u = users(&[("alice", "pw")]);
        let v = basic(b"alice:pw");
        let t0 = Instant::now();
        let ok = AuthResult::Ok("alice".into());
        assert_eq!(u.check_at(Some(&v), t0), ok);
        assert_eq!(u.slow_checks(), 1);
        assert_eq!(u.check_at(Some(&v), t0 + Duration::from_secs(1)), ok);
        assert_eq!(
            u.check_at(Some(&v), t0 + CACHE_TTL - Duration::from_millis(1)),
            ok
        );
        assert_eq!(u.slow_checks(), 1);
        // Past the TTL the password is verified again.
        assert_eq!(u.check_at(Some(&v), t0 + CACHE_TTL), ok);
        assert_eq!(u.slow_checks(), 2);
        // Failures are never remembered.
        let bad = basic(b"alice:nope");
        assert_eq!(u.check_at(Some(&bad), t0), AuthResult::Wrong);
        assert_eq!(u.check_at(Some(&bad), t0), AuthResult::Wrong);
        assert_eq!(u.slow_checks(), 4);
        assert_eq!(u.cache_len(), 1);
    }

    #[test]
    fn cache_is_bounded() {
        let list: Vec<(String, String)> = (0..CACHE_SIZE + 8)
            .map(|i| (format!("user{i}"), format!("pw{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let u = users(&refs);
        let t0 = Instant::now();
        for (i, (name, pw)) in list.iter().enumerate() {
            let v = basic(format!("{name}:{pw}").as_bytes());
            let at = t0 + Duration::from_secs(i as u64);
            assert_eq!(u.check_at(Some(&v), at), AuthResult::Ok(name.clone()));
            assert!(u.cache_len() <= CACHE_SIZE);
        }
        assert_eq!(u.cache_len(), CACHE_SIZE);
        let checks = u.slow_checks();
        // The newest is still cached, the first ones were pushed out.
        let now = t0 + Duration::from_secs(list.len() as u64);
        let last = &list[list.len() - 1];
        u.check_at(
            Some(&basic(format!("{}:{}", last.0, last.1).as_bytes())),
            now,
        );
        assert_eq!(u.slow_checks(), checks);
        u.check_at(Some(&basic(b"user0:pw0")), now);
        assert_eq!(u.slow_checks(), checks + 1);
    }

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

    #[test]
    fn user_names() {
        for good in ["alice", "a", "cam-viewer_2", "ünïcode", &"x".repeat(64)] {
            assert_eq!(check_user_name(good), Ok(()), "{good}");
        }
        for bad in ["", "a:b", "a b", "a\tb", "#a", "a\u{7f}", &"x".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_line("alice", "$h"), "alice:$h");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_forms() {
        let cases = [
            ("192.168.0.0/16", "192.168.0.0/16"),
            ("10.1.2.3", "10.1.2.3/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:1.2.3.4", "1.2.3.4/32"),
        ];
        for (text, shown) in cases {
            assert_eq!(Cidr::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }

    #[test]
    fn cidr_errors() {
        let cases = [
            ("192.168.1.5/24", "192.168.1.0/24"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/", "0 to 32"),
            ("10.0.0.0/+8", "0 to 32"),
            ("10.0.0.0/8/8", "0 to 32"),
            ("10.0.0", "expected an address"),
            ("camera.lan", "expected an address"),
            ("fe80::1%eth0", "expected an address"),
            ("", "expected an address"),
        ];
        for (text, needle) in cases {
            let e = Cidr::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = Allow::parse(&["10.0.0.0/8", "bogus"]).unwrap_err();
        assert!(
            e.starts_with("\"bogus\"") && e.contains("expected an address"),
            "{e}"
        );
    }

    #[test]
    fn allow_matches_ranges_and_mapped_clients() {
        let allow = Allow::parse(&["192.168.0.0/16", "10.1.2.3", "2001:db8::/32", "::1"]).unwrap();
        for yes in [
            "192.168.0.1",
            "192.168.255.255",
            "10.1.2.3",
            "::ffff:192.168.7.7",
            "::ffff:10.1.2.3",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "::1",
        ] {
            assert!(allow.allows(ip(yes)), "{yes}");
        }
        for no in [
            "192.169.0.1",
            "10.1.2.4",
            "127.0.0.1",
            "::ffff:10.1.2.4",
            "2001:db9::1",
            "::2",
            "8.8.8.8",
        ] {
            assert!(!allow.allows(ip(no)), "{no}");
        }
        // ::1 is not the IPv4 address 0.0.0.1, and IPv6 ranges never take in
        // IPv4 clients.
        let v4 = Allow::parse(&["0.0.0.0/8"]).unwrap();
        assert!(!v4.allows(ip("::1")));
        assert!(v4.allows(ip("0.0.0.1")));
        let v6 = Allow::parse(&["::/0"]).unwrap();
        assert!(!v6.allows(ip("::ffff:1.2.3.4")));
        assert!(v6.allows(ip("2001:db8::1")));
        // Mapped ranges do take them in.
        let mapped = Allow::parse(&["::ffff:0:0/96"]).unwrap();
        assert!(mapped.allows(ip("1.2.3.4")) && mapped.allows(ip("::ffff:1.2.3.4")));
        // No --allow: everyone.
        let none = Allow::parse::<&str>(&[]).unwrap();
        assert!(none.is_empty() && none.allows(ip("8.8.8.8")) && none.allows(ip("::1")));
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy::default()
    }

    #[test]
    fn lockout_blocks_after_failures_in_the_window() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(!l.failure(a, t0 + Duration::from_secs(i * 10)));
            assert!(!l.is_blocked(a, t0 + Duration::from_secs(i * 10)));
        }
        let t5 = t0 + Duration::from_secs(59);
        assert!(l.failure(a, t5));
        assert_eq!(l.blocked(a, t5), Some(Duration::from_secs(300)));
        // Another address is not affected.
        assert!(!l.is_blocked(ip("203.0.113.6"), t5));
        // Blocked until the block ends, not a moment longer; further failures
        // while blocked do not extend it.
        assert!(l.failure(a, t5 + Duration::from_secs(100)));
        let end = t5 + Duration::from_secs(300);
        assert!(l.is_blocked(a, end - Duration::from_millis(1)));
        assert!(!l.is_blocked(a, end));
        assert!(l.is_empty());
        // After the block, a fresh count.
        assert!(!l.failure(a, end));
    }

    #[test]
    fn lockout_window_restarts() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(!l.failure(a, t0 + Duration::from_secs(i)));
        }
        // The fifth comes when the window of the first has passed.
        let later = t0 + Duration::from_secs(60);
        assert!(!l.failure(a, later));
        for i in 1..4 {
            assert!(!l.failure(a, later + Duration::from_secs(i)));
        }
        assert!(l.failure(a, later + Duration::from_secs(59)));
    }

    #[test]
    fn lockout_success_clears() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for _ in 0..4 {
            l.failure(a, t0);
        }
        l.success(a);
        assert!(l.is_empty());
        for _ in 0..4 {
            assert!(!l.failure(a, t0));
        }
        assert!(l.failure(a, t0));
    }

    #[test]
    fn lockout_groups_ipv6_by_64_and_mapped_ipv4() {
        let mut l = Lockout::new(policy());
        let t0 = Instant::now();
        for i in 1..=5 {
            l.failure(ip(&format!("2001:db8:1:2::{i}")), t0);
        }
        assert!(l.is_blocked(ip("2001:db8:1:2:ffff::9"), t0));
        assert!(!l.is_blocked(ip("2001:db8:1:3::1"), t0));
        for _ in 0..4 {
            l.failure(ip("198.51.100.7"), t0);
        }
        assert!(l.failure(ip("::ffff:198.51.100.7"), t0));
        assert!(l.is_blocked(ip("198.51.100.7"), t0));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn lockout_table_is_bounded_and_keeps_blocked_addresses() {
        let cap = 64;
        let mut l = Lockout::new(LockoutPolicy {
            capacity: cap,
            ..policy()
        });
        let t0 = Instant::now();
        let blocked = ip("192.0.2.1");
        for _ in 0..5 {
            l.failure(blocked, t0);
        }
        // An attacker with many addresses, one failure each.
        for i in 0..10 * cap as u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.failure(addr, t0 + Duration::from_millis(u64::from(i)));
            assert!(l.len() <= cap);
        }
        assert_eq!(l.len(), cap);
        assert!(l.is_blocked(blocked, t0 + Duration::from_secs(1)));
        // The newest addresses are kept, the oldest unblocked went first.
        let newest = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 10 * cap as u32 - 1));
        assert!(l.table.contains_key(&newest));
        assert!(!l.table.contains_key(&ip("10.0.0.0")));

        // A table full of blocked addresses gives up the one that ends first.
        let mut l = Lockout::new(LockoutPolicy {
            capacity: 4,
            ..policy()
        });
        for i in 0..5u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..5 {
                l.failure(addr, t0 + Duration::from_secs(u64::from(i)));
            }
            assert!(l.len() <= 4);
        }
        let t = t0 + Duration::from_secs(10);
        assert!(!l.is_blocked(ip("10.0.0.0"), t));
        for i in 1..5 {
            assert!(l.is_blocked(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t));
        }
        // Stale entries are dropped before anything live is evicted.
        let late = t0 + Duration::from_secs(1000);
        l.failure(ip("10.9.9.9"), late);
        assert_eq!(l.len(), 1);
    }

    /// `cargo test --release auth::tests::measure -- --ignored --nocapture`:
    /// the cost of one verification at the default cost, and of a cached one.
    #[test]
    #[ignore]
    fn measure() {
        let text = format!("alice:{}\n", hash_password("pw").unwrap());
        let u = Users::parse(&text, "t").unwrap();
        let v = basic(b"alice:pw");
        let rounds = 20;
        let t = Instant::now();
        for _ in 0..rounds {
            assert_eq!(u.check(Some(&basic(b"alice:wrong"))), AuthResult::Wrong);
        }
        let slow = t.elapsed() / rounds;
        u.check(Some(&v));
        let t = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(u.check(Some(&v)), AuthResult::Ok("alice".into()));
        }
        let cached = t.elapsed() / 10_000;
        println!("{DEFAULT_ITERATIONS} iterations: {slow:?} a verification, {cached:?} cached");
    }
}
