//! Everything the TLS policy offers, each handshaken once against the binary
//! under test: every TLS 1.3 suite and every TLS 1.2 suite with the
//! certificate kind it needs, every key-exchange group, every signature
//! scheme, and a resumed session for TLS 1.2 (session id and ticket) and
//! TLS 1.3. The router builds link an OpenSSL trimmed by mk/openssl-trim.pl
//! and Configure options; a trimming step that drops something the policy
//! still offers fails here, and `make release` runs this suite on every
//! binary it ships (mk/release.mk).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode, SslVersion};
use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// The policy's suites (Mozilla intermediate v5, as src/tls.rs configures).
const TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
const TLS12_ECDSA_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
];
const TLS12_RSA_SUITES: &[&str] = &[
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
];
const GROUPS: &[&str] = &["X25519", "P-256", "P-384"];

fn server(kind: KeyKind) -> Served {
    serve_fixed(kind, HELLO)
}

/// What one handshake negotiated.
#[derive(Debug)]
struct Negotiated {
    version: String,
    cipher: String,
    reused: bool,
}

/// A handshake and one proxied GET with a client limited by `configure`,
/// resuming `session` when given; returns what was negotiated and the
/// session the server handed out.
fn exchange(
    addr: SocketAddr,
    session: Option<&openssl::ssl::SslSession>,
    configure: &dyn Fn(&mut SslConnectorBuilder),
) -> Result<(Negotiated, Option<openssl::ssl::SslSession>), String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    configure(&mut b);
    let mut ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    if let Some(session) = session {
        // SAFETY: the session comes from a connection with the same settings.
        unsafe { ssl.set_session(session).unwrap() };
    }
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = ssl.connect(tcp).map_err(|e| e.to_string())?;
    // A whole request, so that a TLS 1.3 ticket (sent after the handshake)
    // has arrived before the session is taken.
    tls.write_all(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut got = vec![0u8; HELLO.len()];
    tls.read_exact(&mut got).map_err(|e| e.to_string())?;
    if got != HELLO {
        return Err(format!("answer {:?}", String::from_utf8_lossy(&got)));
    }
    let negotiated = Negotiated {
        version: tls.ssl().version_str().to_string(),
        cipher: tls
            .ssl()
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        reused: tls.ssl().session_reused(),
    };
    let session = tls.ssl().session().map(|s| s.to_owned());
    let _ = tls.shutdown();
    Ok((negotiated, session))
}

fn tls13_only(b: &mut SslConnectorBuilder) {
    b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
}

fn tls12_only(b: &mut SslConnectorBuilder) {
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
}

/// Runs every case and reports all failures at once, with the server's log.
fn check_all(proxy: &Proxy, cases: Vec<(String, Result<(), String>)>) {
    let failed: Vec<String> = cases
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} handshakes failed:\n{}\ncamtls log:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n"),
        proxy.log()
    );
}

fn expect_cipher(n: Negotiated, version: &str, cipher: &str) -> Result<(), String> {
    if n.version == version && n.cipher == cipher {
        Ok(())
    } else {
        Err(format!("negotiated {} {}", n.version, n.cipher))
    }
}

fn every_suite_with(kind: KeyKind) {
    let s = server(kind);
    let addr = s.proxy.addr();
    let mut cases = Vec::new();
    for suite in TLS13_SUITES {
        let r = exchange(addr, None, &|b| {
            tls13_only(b);
            b.set_ciphersuites(suite).unwrap();
        })
        .and_then(|(n, _)| expect_cipher(n, "TLSv1.3", suite));
        cases.push((format!("{kind:?} TLS 1.3 {suite}"), r));
    }
    let tls12 = match kind {
        KeyKind::Ecdsa => TLS12_ECDSA_SUITES,
        KeyKind::Rsa => TLS12_RSA_SUITES,
    };
    for suite in tls12 {
        let r = exchange(addr, None, &|b| {
            tls12_only(b);
            b.set_cipher_list(suite).unwrap();
        })
        .and_then(|(n, _)| expect_cipher(n, "TLSv1.2", suite));
        cases.push((format!("{kind:?} TLS 1.2 {suite}"), r));
    }
    check_all(&s.proxy, cases);
}

#[test]
fn every_suite_with_an_ecdsa_certificate() {
    every_suite_with(KeyKind::Ecdsa);
}

#[test]
fn every_suite_with_an_rsa_certificate() {
    every_suite_with(KeyKind::Rsa);
}

#[test]
fn every_group_and_signature_scheme() {
    for kind in [KeyKind::Ecdsa, KeyKind::Rsa] {
        let s = server(kind);
        let addr = s.proxy.addr();
        let mut cases = Vec::new();
        for group in GROUPS {
            for (version, limit) in [
                ("TLS 1.3", tls13_only as fn(&mut SslConnectorBuilder)),
                ("TLS 1.2", tls12_only),
            ] {
                // In TLS 1.2 the groups a client lists also bound the curve
                // of an ECDSA certificate (RFC 8422), so there the group is
                // tried with the RSA certificate only.
                if version == "TLS 1.2" && kind == KeyKind::Ecdsa {
                    continue;
                }
                let r = exchange(addr, None, &|b| {
                    limit(b);
                    b.set_groups_list(group).unwrap();
                    if version == "TLS 1.2" {
                        // ECDHE only, so the group is the one in use.
                        b.set_cipher_list("ECDHE").unwrap();
                    }
                })
                .map(|_| ());
                cases.push((format!("{kind:?} {version} group {group}"), r));
            }
        }
        // TLS 1.2 DHE uses the RFC 7919 group the server picks (ffdhe2048).
        if kind == KeyKind::Rsa {
            let r = exchange(addr, None, &|b| {
                tls12_only(b);
                b.set_cipher_list("DHE").unwrap();
            })
            .map(|_| ());
            cases.push(("Rsa TLS 1.2 finite-field DHE".into(), r));
        }
        let schemes: &[(&str, &str)] = match kind {
            KeyKind::Ecdsa => &[("TLS 1.3", "ECDSA+SHA256"), ("TLS 1.2", "ECDSA+SHA256")],
            KeyKind::Rsa => &[
                ("TLS 1.3", "rsa_pss_rsae_sha256"),
                ("TLS 1.2", "rsa_pss_rsae_sha256"),
                ("TLS 1.2", "RSA+SHA256"),
            ],
        };
        for (version, scheme) in schemes {
            let r = exchange(addr, None, &|b| {
                if *version == "TLS 1.3" {
                    tls13_only(b)
                } else {
                    tls12_only(b)
                }
                b.set_sigalgs_list(scheme).unwrap();
            })
            .map(|_| ());
            cases.push((format!("{kind:?} {version} signature {scheme}"), r));
        }
        check_all(&s.proxy, cases);
    }
}

/// A first handshake, then one that must resume its session.
fn resumed(addr: SocketAddr, configure: &dyn Fn(&mut SslConnectorBuilder)) -> Result<(), String> {
    let (first, session) = exchange(addr, None, configure)?;
    let session = session.ok_or("the server handed out no session")?;
    if first.reused {
        return Err("the first handshake claims to be resumed".into());
    }
    let (second, _) = exchange(addr, Some(&session), configure)?;
    if second.reused {
        Ok(())
    } else {
        Err(format!("{} not resumed", second.version))
    }
}

#[test]
fn sessions_resume_with_each_certificate_kind() {
    for kind in [KeyKind::Ecdsa, KeyKind::Rsa] {
        let s = server(kind);
        let addr = s.proxy.addr();
        let cases = vec![
            (
                format!("{kind:?} TLS 1.2 by session id"),
                resumed(addr, &|b| {
                    tls12_only(b);
                    b.set_options(openssl::ssl::SslOptions::NO_TICKET);
                }),
            ),
            (
                format!("{kind:?} TLS 1.2 by ticket"),
                resumed(addr, &tls12_only),
            ),
            (
                format!("{kind:?} TLS 1.3 by ticket"),
                resumed(addr, &tls13_only),
            ),
        ];
        check_all(&s.proxy, cases);
    }
}
