//! The TLS policy as clients see it: TLS 1.0 and 1.1 refused, 1.2 and 1.3
//! served, no suite without forward secrecy, sessions resumed (TLS 1.2 by
//! session id and by ticket, TLS 1.3 by ticket). Checked with OpenSSL in
//! this process and with two separate clients, `openssl s_client` and
//! `curl`. A refusal is asserted to be the server's (its alert), not a
//! client that would not try.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use openssl::ssl::{
    SslConnector, SslConnectorBuilder, SslMethod, SslOptions, SslSession, SslStream, SslVerifyMode,
    SslVersion,
};
use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn start(kind: KeyKind) -> Served {
    serve_fixed(kind, HELLO)
}

/// A client with only what `configure` allows; any version unless told.
fn connect(
    addr: SocketAddr,
    session: Option<&SslSession>,
    configure: impl FnOnce(&mut SslConnectorBuilder),
) -> Result<SslStream<TcpStream>, String> {
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
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    ssl.connect(tcp).map_err(|e| e.to_string())
}

fn versions(min: SslVersion, max: SslVersion) -> impl FnOnce(&mut SslConnectorBuilder) {
    move |b| {
        // OpenSSL 3 clients will not offer TLS 1.0/1.1 above security level 0.
        b.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
        b.set_min_proto_version(Some(min)).unwrap();
        b.set_max_proto_version(Some(max)).unwrap();
    }
}

/// One GET over `tls`; the proxy's answer must be the backend's.
fn get(tls: &mut SslStream<TcpStream>) {
    tls.write_all(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; HELLO.len()];
    tls.read_exact(&mut got).unwrap();
    assert_eq!(got, HELLO);
}

#[test]
fn tls_1_0_and_1_1_refused_1_2_and_1_3_served() {
    let setup = start(KeyKind::Ecdsa);
    let addr = setup.proxy.addr();
    for old in [SslVersion::TLS1, SslVersion::TLS1_1] {
        let err = connect(addr, None, versions(old, old)).unwrap_err();
        // The server answered the hello with a protocol_version alert.
        assert!(err.contains("alert protocol version"), "{old:?}: {err}");
    }
    // OpenSSL names the refusal by how it was built: "unsupported protocol"
    // where TLS 1.0/1.1 exist but are turned off (the host build), "version
    // too low" where they are configured out (the router builds).
    let line = setup.proxy.wait_for_log("TLS handshake failed: ");
    assert!(
        line.ends_with("unsupported protocol") || line.ends_with("version too low"),
        "{line}"
    );
    for (version, name) in [
        (SslVersion::TLS1_2, "TLSv1.2"),
        (SslVersion::TLS1_3, "TLSv1.3"),
    ] {
        let mut tls = connect(addr, None, versions(version, version)).unwrap();
        assert_eq!(tls.ssl().version_str(), name);
        get(&mut tls);
    }
    // A client offering everything from TLS 1.0 up gets TLS 1.3.
    let mut tls = connect(addr, None, versions(SslVersion::TLS1, SslVersion::TLS1_3)).unwrap();
    assert_eq!(tls.ssl().version_str(), "TLSv1.3");
    get(&mut tls);
}

fn tls12_ciphers(list: &'static str) -> impl FnOnce(&mut SslConnectorBuilder) {
    move |b| {
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_cipher_list(list).unwrap();
    }
}

#[test]
fn only_forward_secret_aead_suites() {
    // RSA, so that the static-RSA suites could be chosen at all.
    let setup = start(KeyKind::Rsa);
    let addr = setup.proxy.addr();
    for refused in [
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        // Every static-RSA key exchange OpenSSL has.
        "kRSA:@SECLEVEL=0",
        // Forward secret, but CBC with its padding-oracle history.
        "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384",
    ] {
        let err = connect(addr, None, tls12_ciphers(refused)).unwrap_err();
        assert!(err.contains("alert handshake failure"), "{refused}: {err}");
    }
    setup
        .proxy
        .wait_for_log("TLS handshake failed: no shared cipher");
    for accepted in [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ] {
        let mut tls = connect(addr, None, tls12_ciphers(accepted)).unwrap();
        assert_eq!(tls.ssl().current_cipher().unwrap().name(), accepted);
        get(&mut tls);
    }
    // A client offering everything, weak suites first, still gets ECDHE.
    let tls = connect(
        addr,
        None,
        tls12_ciphers("kRSA:ALL:COMPLEMENTOFALL:@SECLEVEL=0"),
    )
    .unwrap();
    let cipher = tls.ssl().current_cipher().unwrap().name();
    assert!(cipher.starts_with("ECDHE-RSA-"), "{cipher}");
}

/// The machine of the binary under test, from its ELF header (EM_MIPS is 8,
/// EM_X86_64 62), and whether a host x86_64 CPU has AES-NI.
fn binary_machine() -> u16 {
    let bin =
        std::env::var("CAMTLS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_camtls").to_string());
    let head = std::fs::read(&bin).unwrap();
    let field = [head[18], head[19]];
    match head[5] {
        2 => u16::from_be_bytes(field),
        _ => u16::from_le_bytes(field),
    }
}

fn host_has_aes_ni() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "aes"))
}

#[test]
fn chacha20_first_unless_aes_is_in_hardware() {
    // A client that lists ChaCha20 first always gets it. One that lists AES
    // first gets AES where the CPU has AES instructions, and ChaCha20 where
    // it has none (MIPS; most ARMv7), since AES in software costs 3.2 times
    // ChaCha20's instructions per MiB on MIPS.
    let setup = start(KeyKind::Ecdsa);
    let addr = setup.proxy.addr();
    let log = setup.proxy.wait_for_log("TLS: ");
    let has_aes = if log.contains("TLS: AES instructions found") {
        true
    } else {
        assert!(log.contains("TLS: no AES instructions"), "{log}");
        false
    };
    // Where the test knows the truth itself, the binary must agree.
    match binary_machine() {
        8 => assert!(!has_aes, "a MIPS binary claims AES instructions"),
        62 => assert_eq!(has_aes, host_has_aes_ni(), "{log}"),
        _ => {} // ARM under qemu: whatever CPU qemu models.
    }
    let tls13 = |suites: &'static str| {
        move |b: &mut SslConnectorBuilder| {
            b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
            b.set_ciphersuites(suites).unwrap();
        }
    };
    let tls12 = |list: &'static str| {
        move |b: &mut SslConnectorBuilder| {
            b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
            b.set_cipher_list(list).unwrap();
        }
    };
    let chosen = |tls: SslStream<TcpStream>| tls.ssl().current_cipher().unwrap().name();
    let tls = connect(
        addr,
        None,
        tls13("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"),
    );
    assert_eq!(chosen(tls.unwrap()), "TLS_CHACHA20_POLY1305_SHA256");
    let tls = connect(
        addr,
        None,
        tls13("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"),
    );
    let expected = if has_aes {
        // Server order among AES suites, Mozilla's: AES-128 first.
        "TLS_AES_128_GCM_SHA256"
    } else {
        "TLS_CHACHA20_POLY1305_SHA256"
    };
    assert_eq!(chosen(tls.unwrap()), expected);
    let tls = connect(
        addr,
        None,
        tls12("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"),
    );
    let expected = if has_aes {
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    } else {
        "ECDHE-ECDSA-CHACHA20-POLY1305"
    };
    assert_eq!(chosen(tls.unwrap()), expected);
    // A client without ChaCha20 still gets AES.
    let tls = connect(addr, None, tls13("TLS_AES_128_GCM_SHA256"));
    assert_eq!(chosen(tls.unwrap()), "TLS_AES_128_GCM_SHA256");
}

/// Connects, fetches, closes; connects again with the saved session and
/// checks that it was resumed. `polite` closes with close_notify.
fn resumes(addr: SocketAddr, configure: fn(&mut SslConnectorBuilder), polite: bool) {
    let mut first = connect(addr, None, configure).unwrap();
    assert!(!first.ssl().session_reused());
    get(&mut first);
    // TLS 1.3 tickets arrive after the handshake; reading the response has
    // taken them in.
    // A copy: OpenSSL marks the client's own session object unresumable
    // when the connection ends without close_notify, and what is tested
    // here is whether the server still resumes it.
    let der = first.ssl().session().unwrap().to_der().unwrap();
    let session = SslSession::from_der(&der).unwrap();
    if polite {
        let _ = first.shutdown();
    }
    drop(first);
    for n in 0..2 {
        let mut again = connect(addr, Some(&session), configure).unwrap();
        assert!(
            again.ssl().session_reused(),
            "session not resumed (polite {polite}, connection {n})"
        );
        get(&mut again);
        let _ = again.shutdown();
    }
}

fn tls12_session_id(b: &mut SslConnectorBuilder) {
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    b.set_options(SslOptions::NO_TICKET);
}

fn tls12_ticket(b: &mut SslConnectorBuilder) {
    b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
}

fn tls13(b: &mut SslConnectorBuilder) {
    b.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
}

#[test]
fn sessions_resume_tls12_by_session_id() {
    let setup = start(KeyKind::Ecdsa);
    resumes(setup.proxy.addr(), tls12_session_id, true);
    // Browsers often close without close_notify; the session survives that.
    resumes(setup.proxy.addr(), tls12_session_id, false);
}

#[test]
fn sessions_resume_tls12_by_ticket() {
    let setup = start(KeyKind::Rsa);
    resumes(setup.proxy.addr(), tls12_ticket, true);
    resumes(setup.proxy.addr(), tls12_ticket, false);
}

#[test]
fn sessions_resume_tls13() {
    let setup = start(KeyKind::Ecdsa);
    resumes(setup.proxy.addr(), tls13, true);
    resumes(setup.proxy.addr(), tls13, false);
}

/// `openssl s_client ARGS`, sending `input`, reading until the server closes.
fn s_client(addr: SocketAddr, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(WAIT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("openssl s_client {args:?} did not finish");
        }
    };
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const CLOSE_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: cam\r\nConnection: close\r\n\r\n";

#[test]
fn openssl_s_client_sees_the_policy() {
    let setup = start(KeyKind::Rsa);
    let addr = setup.proxy.addr();
    for old in ["-tls1", "-tls1_1"] {
        let out = s_client(addr, &[old, "-cipher", "DEFAULT:@SECLEVEL=0"], b"");
        assert!(out.contains("alert protocol version"), "{old}: {out}");
    }
    let out = s_client(addr, &["-tls1_2", "-cipher", "AES128-GCM-SHA256"], b"");
    assert!(out.contains("alert handshake failure"), "{out}");

    let dir = TempDir::new();
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let saved = dir.path(&format!("session{flag}"));
        let saved = saved.to_str().unwrap();
        let out = s_client(addr, &[flag, "-sess_out", saved], CLOSE_GET);
        assert!(
            out.contains(&format!("New, {version}, Cipher is ")),
            "{out}"
        );
        assert!(out.contains("\r\n\r\nhello"), "{out}");
        let out = s_client(addr, &[flag, "-sess_in", saved], CLOSE_GET);
        assert!(
            out.contains(&format!("Reused, {version}, Cipher is ")),
            "{out}"
        );
        assert!(out.contains("\r\n\r\nhello"), "{out}");
    }
}

fn curl(args: &[&str]) -> Ran {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--insecure", "--verbose"])
        .args(args);
    run_to_exit(cmd)
}

#[test]
fn curl_sees_the_policy() {
    let setup = start(KeyKind::Rsa);
    let url = format!("https://{}/", setup.proxy.addr());
    for (min, max) in [("--tlsv1.0", "1.0"), ("--tlsv1.1", "1.1")] {
        let ran = curl(&[
            min,
            "--tls-max",
            max,
            "--ciphers",
            "DEFAULT:@SECLEVEL=0",
            &url,
        ]);
        // 35: the TLS handshake failed.
        assert_eq!(ran.code, Some(35), "{ran:?}");
        assert!(ran.stderr.contains("alert protocol version"), "{ran:?}");
    }
    let ran = curl(&["--tls-max", "1.2", "--ciphers", "AES128-GCM-SHA256", &url]);
    assert_eq!(ran.code, Some(35), "{ran:?}");
    assert!(ran.stderr.contains("alert handshake failure"), "{ran:?}");

    // Two requests, each on a connection of its own: the second handshake
    // is a resumption, with no Certificate message.
    for (flags, version) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let mut a = flags.to_vec();
        a.extend(["-H", "Connection: close", &url, &url]);
        let ran = curl(&a);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        assert_eq!(ran.stdout, "hellohello");
        let connections = ran
            .stderr_lines_with(&format!("SSL connection using {version} / "))
            .len();
        assert_eq!(connections, 2, "{}", ran.stderr);
        let certificates = ran
            .stderr_lines_with("TLS handshake, Certificate (11)")
            .len();
        assert_eq!(certificates, 1, "{}", ran.stderr);
    }
}
