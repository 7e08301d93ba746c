//! TLS: loading a certificate and key in the forms routers and users have,
//! and the server context (policy, cipher order, sessions). The async
//! adapter that drives an OpenSSL stream over a non-blocking socket is
//! `tls::stream`.

pub mod stream;

use std::fs;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslContext, SslMethod, SslOptions, SslSessionCacheMode};
use openssl::x509::X509;

use crate::auth::secret_file;
use crate::config::TlsFiles;
use crate::Error;

/// How long a TLS 1.2 session stays resumable, as nginx's
/// `ssl_session_timeout 5m`.
pub const SESSION_LIFETIME_SECS: std::os::raw::c_long = 300;

/// Sessions kept for resumption. Each costs well under 1 KiB; a router's
/// handful of viewers reconnecting needs far fewer than OpenSSL's 20480.
pub const SESSION_CACHE_SIZE: i32 = 512;

// Neither the openssl crate nor openssl-sys declares it (nor the two that
// tls::stream declares).
extern "C" {
    // The session lifetime. In every OpenSSL.
    fn SSL_CTX_set_timeout(
        ctx: *mut openssl_sys::SSL_CTX,
        t: std::os::raw::c_long,
    ) -> std::os::raw::c_long;
}

/// Mozilla's intermediate suites (as `SslAcceptor::mozilla_intermediate_v5`
/// sets them) with ChaCha20-Poly1305 moved first. Without AES instructions,
/// OpenSSL's AES-GCM costs several times ChaCha20-Poly1305's CPU per byte:
/// instruction counts under qemu-mipsel in docs/performance.md.
const CHACHA_FIRST_TLS13: &str =
    "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
const CHACHA_FIRST_TLS12: &str = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
    ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
    DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/// Whether this CPU encrypts AES in hardware. Where it does, the client's
/// order of suites is kept (ChaCha20 still first for a client that lists it
/// first); where not, ChaCha20-Poly1305 goes first for everyone. MIPS cores
/// have no AES instructions; ARM cores have them only with the v8 crypto
/// extension, which most ARMv7 routers lack.
pub fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("aes");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(target_arch = "arm")]
    {
        // Linux's HWCAP2_AES for 32-bit ARM (arch/arm/include/uapi/asm/hwcap.h).
        const HWCAP2_AES: nix::libc::c_ulong = 1 << 0;
        // SAFETY: getauxval only reads the auxiliary vector.
        return unsafe { nix::libc::getauxval(nix::libc::AT_HWCAP2) } & HWCAP2_AES != 0;
    }
    #[allow(unreachable_code)]
    false
}

/// A certificate chain and its key, checked to belong together.
pub struct Identity {
    pub leaf: X509,
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
}

impl Identity {
    /// Reads the certificate (leaf first, then intermediates) and the key:
    /// PKCS#8, traditional RSA or SEC1 EC, from the key file or, without one,
    /// from the certificate file.
    pub fn load(files: &TlsFiles) -> Result<Identity, Error> {
        let cert_pem = read_file("certificate", &files.cert)?;
        let mut certs = X509::stack_from_pem(&cert_pem).map_err(|e| {
            Error::new(format!(
                "certificate {}: not a PEM certificate ({})",
                files.cert.display(),
                first_reason(&e)
            ))
        })?;
        if certs.is_empty() {
            return Err(Error::new(format!(
                "certificate {}: no certificate found in the file",
                files.cert.display()
            )));
        }
        let leaf = certs.remove(0);
        let (key_path, key_pem) = match &files.key {
            Some(path) => (path.as_path(), read_file("key", path)?),
            None => (files.cert.as_path(), cert_pem),
        };
        let key = parse_key(&key_pem).map_err(|why| {
            let hint = if files.key.is_none() {
                " (no --key given, so the key was looked for in the certificate file)"
            } else {
                ""
            };
            Error::new(format!("key {}: {why}{hint}", key_path.display()))
        })?;
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(Error::new(format!(
                "key {} does not match certificate {}",
                key_path.display(),
                files.cert.display()
            )));
        }
        Ok(Identity {
            leaf,
            chain: certs,
            key,
        })
    }

    /// The SHA-256 fingerprint as browsers and viewer apps show it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.leaf)
    }

    /// The server context: Mozilla's intermediate policy (TLS 1.2 and 1.3,
    /// forward-secret AEAD suites only), a session cache, and buffers released
    /// while a connection is idle.
    pub fn server_context(&self) -> Result<SslContext, Error> {
        let build = || -> Result<SslContext, openssl::error::ErrorStack> {
            let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
            b.set_certificate(&self.leaf)?;
            for cert in &self.chain {
                b.add_extra_chain_cert(cert.clone())?;
            }
            b.set_private_key(&self.key)?;
            b.check_private_key()?;
            // Server order, so that ChaCha20 can be moved first: for the
            // clients that prefer it, and for every client that offers it
            // when this CPU has no AES instructions.
            if !cpu_has_aes() {
                b.set_ciphersuites(CHACHA_FIRST_TLS13)?;
                b.set_cipher_list(CHACHA_FIRST_TLS12)?;
            }
            // Added to what SslAcceptor sets already: NO_COMPRESSION, and the
            // RELEASE_BUFFERS mode that frees idle record buffers.
            b.set_options(
                SslOptions::CIPHER_SERVER_PREFERENCE
                    | SslOptions::PRIORITIZE_CHACHA
                    | SslOptions::NO_RENEGOTIATION
                    // Browsers often close without close_notify; HTTP framing,
                    // not the TLS alert, tells whether a message was complete.
                    | SslOptions::IGNORE_UNEXPECTED_EOF,
            );
            // One recv per socket wakeup instead of two per record (header,
            // then body): on a router every system call counts.
            b.set_read_ahead(true);
            b.set_session_cache_mode(SslSessionCacheMode::SERVER);
            b.set_session_cache_size(SESSION_CACHE_SIZE);
            // SAFETY: the builder owns a valid SSL_CTX for the whole call.
            unsafe { SSL_CTX_set_timeout(b.as_ptr(), SESSION_LIFETIME_SECS) };
            Ok(b.build().into_context())
        };
        build().map_err(|e| Error::new(format!("TLS setup failed: {}", first_reason(&e))))
    }
}

/// Warnings a user should see at start: a key others can read, a
/// certificate that has expired.
pub fn startup_warnings(files: &TlsFiles, identity: &Identity) -> Vec<String> {
    let mut warnings = Vec::new();
    let key_path = files.key.as_ref().unwrap_or(&files.cert);
    warnings.extend(secret_file::permission_warning("key file", key_path));
    if let Ok(now) = openssl::asn1::Asn1Time::days_from_now(0) {
        if identity.leaf.not_after() < now {
            warnings.push(format!(
                "certificate {} expired on {}",
                files.cert.display(),
                identity.leaf.not_after()
            ));
        }
    }
    warnings
}

pub fn fingerprint(cert: &X509) -> String {
    match cert.digest(MessageDigest::sha256()) {
        Ok(digest) => digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        Err(_) => String::from("(unavailable)"),
    }
}

/// `camtls fingerprint FILE`.
pub fn fingerprint_file(path: &Path) -> Result<String, Error> {
    let pem = read_file("certificate", path)?;
    let cert = X509::from_pem(&pem).map_err(|e| {
        Error::new(format!(
            "certificate {}: not a PEM certificate ({})",
            path.display(),
            first_reason(&e)
        ))
    })?;
    Ok(fingerprint(&cert))
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|e| Error::new(format!("cannot read {what} {}: {e}", path.display())))
}

fn parse_key(pem: &[u8]) -> Result<PKey<Private>, String> {
    if !pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(String::from("no private key found in the file"));
    }
    // A passphrase prompt would hang an unattended start; refuse instead.
    PKey::private_key_from_pem_callback(pem, |_| Ok(0)).map_err(|e| {
        if pem.windows(9).any(|w| w == b"ENCRYPTED") {
            String::from("the key is protected by a passphrase; camtls needs it unencrypted")
        } else {
            format!("not a readable private key ({})", first_reason(&e))
        }
    })
}

pub(crate) fn first_reason(stack: &openssl::error::ErrorStack) -> String {
    stack
        .errors()
        .first()
        .and_then(|e| e.reason().map(String::from))
        .unwrap_or_else(|| stack.to_string())
}
