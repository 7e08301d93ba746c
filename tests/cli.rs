//! The command line of the real binary: --help and --version, every way a
//! start can be refused (one line naming the culprit, a non-zero exit, no
//! port served), --check, the key and certificate forms routers and users
//! have, Tomato's default paths, the start-up log, `gen-cert` and
//! `fingerprint`. Honours CAMTLS_BIN and CAMTLS_RUNNER like tests/e2e.rs.

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use openssl::asn1::Asn1Time;
use openssl::pkey::Id;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The Options section of an argh help text: option spelling -> its
/// description. argh puts descriptions in a column at 20; a longer name
/// stands on a line of its own.
fn options_of(help: &str) -> BTreeMap<String, String> {
    const COLUMN: usize = 20;
    let mut options = BTreeMap::new();
    let mut current: Option<String> = None;
    let section = help
        .split("\nOptions:\n")
        .nth(1)
        .expect("an Options section")
        .split("\n\n")
        .next()
        .unwrap();
    for line in section.lines() {
        let alone = line.len() >= COLUMN && line.as_bytes()[COLUMN - 1] != b' ';
        let (left, text) = if alone {
            (line, "")
        } else {
            line.split_at(line.len().min(COLUMN))
        };
        let text = text.trim();
        if !left.trim().is_empty() {
            current = Some(left.trim().to_string());
            options.insert(left.trim().to_string(), text.to_string());
        } else if let Some(name) = &current {
            let description = options.get_mut(name).unwrap();
            if !description.is_empty() {
                description.push(' ');
            }
            description.push_str(text);
        }
    }
    options
}

#[test]
fn help_lists_every_option_with_its_default() {
    let ran = run_camtls(&["--help"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with("Usage: camtls [--route <route...>]"),
        "{}",
        ran.stdout
    );
    let options = options_of(&ran.stdout);
    // Every option of src/cli.rs, and the default each one states.
    let expected: &[(&str, Option<&str>)] = &[
        ("--route", None),
        ("--cert", Some("/tmp/etc/cert.pem")),
        ("--key", Some("/tmp/etc/key.pem, or the key inside --cert")),
        ("--plain", None),
        ("--preserve-host", None),
        ("--auth-file", None),
        ("--allow", Some("any address")),
        ("--backend-auth", None),
        ("--backend-auth-file", None),
        ("--max-connections", Some("128")),
        ("--max-per-address", Some("32")),
        ("--handshake-timeout", Some("10")),
        ("--head-timeout", Some("10")),
        ("--idle-timeout", Some("75")),
        ("--connect-timeout", Some("5")),
        ("--backend-timeout", Some("60")),
        ("--shutdown-grace", Some("5")),
        ("--log-level", Some("info")),
        ("--syslog", None),
        ("--daemon", None),
        ("--pidfile", None),
        ("--user", None),
        ("--check", None),
        ("-V, --version", None),
        ("--help, help", None),
    ];
    assert_eq!(
        options.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
            names.sort();
            names
        },
        "{}",
        ran.stdout
    );
    for (name, default) in expected {
        let text = &options[*name];
        assert!(!text.is_empty(), "{name} has no description");
        if let Some(default) = default {
            assert!(
                text.contains(&format!("(default: {default})")),
                "{name}: {text:?} does not state the default {default}"
            );
        }
    }
    assert!(
        ran.stdout.contains("\nCommands:\n  gen-cert  "),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("\n  fingerprint  "), "{}", ran.stdout);

    let ran = run_camtls(&["gen-cert", "--help"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let options = options_of(&ran.stdout);
    assert_eq!(
        options.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "--cert",
            "--days",
            "--force",
            "--help, help",
            "--key",
            "--name",
            "--rsa"
        ]
    );
    assert!(options["--days"].contains("(default: 825"), "{options:?}");
    assert!(
        options["--name"].contains("default: localhost"),
        "{options:?}"
    );
}

#[test]
fn version_prints_name_and_version() {
    for flag in ["--version", "-V"] {
        let ran = run_camtls(&[flag]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        assert_eq!(
            ran.stdout,
            format!("camtls {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(ran.stderr, "");
    }
}

/// Runs a start that must be refused; checks the exit code, that the
/// message line is there, and that the port stayed closed.
fn refused(args: &[String], listen: SocketAddr, message: &str) -> Ran {
    refused_as(args, listen, message, |l, line| l == line, 1)
}

/// As `refused`, for a command line or configuration that is wrong: exit
/// status 2, which tells a supervisor not to start it again as it is.
fn refused_usage(args: &[String], listen: SocketAddr, message: &str) -> Ran {
    refused_as(args, listen, message, |l, line| l == line, 2)
}

/// As `refused`, for a message whose end is the C library's own wording
/// (glibc and musl word errno differently): the line starts with `message`.
fn refused_starting(args: &[String], listen: SocketAddr, message: &str) -> Ran {
    refused_as(args, listen, message, |l, line| l.starts_with(line), 1)
}

fn refused_as(
    args: &[String],
    listen: SocketAddr,
    message: &str,
    matches: impl Fn(&str, &str) -> bool,
    status: i32,
) -> Ran {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_camtls(&args);
    assert_eq!(ran.code, Some(status), "{args:?}: {ran:?}");
    let line = format!("camtls: {message}");
    assert!(
        ran.stderr.lines().any(|l| matches(l, &line)),
        "{args:?}: expected the line\n{line}\nin stderr:\n{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "{args:?}: {ran:?}");
    assert!(!ran.stderr.contains("listening on"), "{ran:?}");
    assert!(nothing_listens(listen), "{args:?}: something listens");
    ran
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn command_line_mistakes_are_one_line_and_exit_2() {
    let l = closed_port();
    let route = format!("{l}=127.0.0.1:9");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![],
            "no --route given: say what to serve, e.g. --route 8443=192.168.1.20:80".into(),
        ),
        (
            strings(&["--route", "8443"]),
            r#"--route "8443": expected LISTEN=BACKEND, e.g. 8443=192.168.1.20:80"#.into(),
        ),
        (
            strings(&["--route", "8443=cam"]),
            r#"--route "8443=cam": backend "cam": expected HOST:PORT, e.g. 192.168.1.20:80"#.into(),
        ),
        (
            strings(&["--route", "http=cam:80"]),
            r#"--route "http=cam:80": listen address "http" is not a port number"#.into(),
        ),
        (
            strings(&["--route", "70000=cam:80"]),
            r#"--route "70000=cam:80": listen address port 70000 is out of range (1-65535)"#.into(),
        ),
        (
            strings(&["--route", "1.2.3.4:x=cam:80"]),
            r#"--route "1.2.3.4:x=cam:80": listen address "1.2.3.4:x": expected PORT, IPv4:PORT or [IPv6]:PORT"#.into(),
        ),
        (
            strings(&["--route", "8443=cam:0"]),
            r#"--route "8443=cam:0": backend "cam:0": port 0 cannot be connected to"#.into(),
        ),
        (
            strings(&["--route", "8443=fe80::1:80"]),
            r#"--route "8443=fe80::1:80": backend "fe80::1:80": expected HOST:PORT, e.g. 192.168.1.20:80"#.into(),
        ),
        (
            strings(&["--route", "8443=c m:80"]),
            r#"--route "8443=c m:80": backend "c m:80": "c m" is not a host name or address"#.into(),
        ),
        (
            strings(&["--route", "8443=a:80", "--route", "8443=b:80"]),
            "--route: *:8443 and *:8443 listen on the same port".into(),
        ),
        (
            vec!["--route".into(), route.clone(), "--route".into(), format!("{l}=b:80")],
            format!("--route: {l} and {l} listen on the same port"),
        ),
        (
            vec!["--route".into(), route.clone(), "--max-connections".into(), "0".into()],
            "--max-connections must be at least 1".into(),
        ),
        (
            vec!["--route".into(), route.clone(), "--log-level".into(), "loud".into()],
            r#"--log-level "loud": expected error, warn, info, debug or trace"#.into(),
        ),
        (
            vec!["--route".into(), route.clone(), "--plain".into(), "--cert".into(), "c.pem".into()],
            "--plain serves no TLS: leave out --cert and --key".into(),
        ),
    ];
    let timeouts = [
        "handshake-timeout",
        "head-timeout",
        "idle-timeout",
        "connect-timeout",
        "backend-timeout",
    ];
    let cases = cases.into_iter().chain(timeouts.iter().map(|t| {
        (
            vec![
                "--route".into(),
                route.clone(),
                format!("--{t}"),
                "0".into(),
            ],
            format!("--{t} must be at least 1 second"),
        )
    }));
    for (args, message) in cases {
        let ran = refused_usage(&args, l, &message);
        // Nothing is loaded or logged before the command line is checked: the
        // message is the whole output.
        assert_eq!(ran.stderr, format!("camtls: {message}\n"), "{args:?}");
    }
}

#[test]
fn argument_syntax_errors_exit_2() {
    let l = closed_port();
    let route = format!("{l}=127.0.0.1:9");
    let cases: [(&[&str], &str); 4] = [
        (&["--route", &route, "--bogus"], "Unrecognized argument: --bogus"),
        (
            &["--route", &route, "--max-connections", "lots"],
            "Error parsing option '--max-connections' with value 'lots': invalid digit found in string",
        ),
        (
            &["--route", &route, "--idle-timeout", "-1"],
            "Error parsing option '--idle-timeout' with value '-1': invalid digit found in string",
        ),
        (&["--route"], "No value provided for option '--route'."),
    ];
    for (args, first_line) in cases {
        let ran = run_camtls(args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran:?}");
        assert_eq!(ran.stderr.lines().next(), Some(first_line), "{ran:?}");
        assert!(
            ran.stderr
                .contains("Run camtls --help for more information."),
            "{ran:?}"
        );
        assert!(nothing_listens(l));
    }
}

/// A certificate and key made by the openssl tool, as users make them.
struct CliPair {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn cli_pair(dir: &TempDir, name: &str, key_args: &[&str]) -> CliPair {
    let key = dir.path(&format!("{name}.key"));
    let cert = dir.path(&format!("{name}.crt"));
    // `-out` before the rest: genrsa wants the key size last.
    let mut args = vec![key_args[0], "-out", key.to_str().unwrap()];
    args.extend(&key_args[1..]);
    openssl_cli(&args);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    openssl_cli(&[
        "req",
        "-new",
        "-x509",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-days",
        "30",
        "-out",
        cert.to_str().unwrap(),
    ]);
    CliPair { cert, key }
}

fn tls_args(listen: SocketAddr, cert: &Path, key: Option<&Path>) -> Vec<String> {
    let mut a = strings(&["--route", &format!("{listen}=127.0.0.1:9")]);
    a.extend(["--cert".into(), s(cert)]);
    if let Some(key) = key {
        a.extend(["--key".into(), s(key)]);
    }
    a
}

#[test]
fn certificate_and_key_problems_name_the_file() {
    let dir = TempDir::new();
    let l = closed_port();
    let good = write_pair(&dir, KeyKind::Ecdsa);
    let other = write_pair(&dir, KeyKind::Rsa);
    let missing = dir.path("missing.pem");
    let garbage = dir.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let traditional_encrypted = dir.path("traditional-encrypted.key");
    openssl_cli(&[
        "genrsa",
        "-traditional",
        "-aes128",
        "-passout",
        "pass:secret",
        "-out",
        traditional_encrypted.to_str().unwrap(),
        "2048",
    ]);
    let pem = std::fs::read_to_string(&traditional_encrypted).unwrap();
    assert!(pem.contains("Proc-Type: 4,ENCRYPTED"), "{pem}");
    let pkcs8_encrypted = dir.path("pkcs8-encrypted.key");
    openssl_cli(&[
        "pkey",
        "-in",
        good.key.to_str().unwrap(),
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        pkcs8_encrypted.to_str().unwrap(),
    ]);
    assert!(std::fs::read_to_string(&pkcs8_encrypted)
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

    let cases: Vec<(Vec<String>, String)> = vec![
        (
            tls_args(l, &missing, Some(&good.key)),
            format!(
                "cannot read certificate {}: No such file or directory (os error 2)",
                s(&missing)
            ),
        ),
        (
            tls_args(l, &dir.0, Some(&good.key)),
            format!(
                "cannot read certificate {}: Is a directory (os error 21)",
                s(&dir.0)
            ),
        ),
        (
            tls_args(l, &garbage, Some(&good.key)),
            format!(
                "certificate {}: no certificate found in the file",
                s(&garbage)
            ),
        ),
        (
            tls_args(l, &good.cert, Some(&missing)),
            format!(
                "cannot read key {}: No such file or directory (os error 2)",
                s(&missing)
            ),
        ),
        (
            tls_args(l, &good.cert, Some(&garbage)),
            format!("key {}: no private key found in the file", s(&garbage)),
        ),
        (
            tls_args(l, &good.cert, Some(&other.key)),
            format!(
                "key {} does not match certificate {}",
                s(&other.key),
                s(&good.cert)
            ),
        ),
        (
            tls_args(l, &good.cert, None),
            format!(
                "key {}: no private key found in the file (no --key given, so the key was looked for in the certificate file)",
                s(&good.cert)
            ),
        ),
        (
            tls_args(l, &good.cert, Some(&traditional_encrypted)),
            format!(
                "key {}: the key is protected by a passphrase; camtls needs it unencrypted",
                s(&traditional_encrypted)
            ),
        ),
        (
            tls_args(l, &good.cert, Some(&pkcs8_encrypted)),
            format!(
                "key {}: the key is protected by a passphrase; camtls needs it unencrypted",
                s(&pkcs8_encrypted)
            ),
        ),
        (
            {
                let mut a = tls_args(l, &good.cert, Some(&good.key));
                a.extend(strings(&["--user", "camtls-no-such-user"]));
                a
            },
            "--user camtls-no-such-user: no such user".into(),
        ),
    ];
    for (args, message) in cases {
        // A file may be fixed or replaced (status 1: try again); a user that
        // does not exist is the configuration's mistake (2).
        let refused = if message.starts_with("--user") {
            refused_usage
        } else {
            refused
        };
        refused(&args, l, &message);
        // --check runs the same checks.
        let mut check = args.clone();
        check.push("--check".into());
        let ran = refused(&check, l, &message);
        assert!(!ran.stdout.contains("configuration OK"));
    }
}

#[test]
fn unreadable_key_is_named() {
    let dir = TempDir::new();
    let l = closed_port();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    std::fs::set_permissions(&pair.cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o000)).unwrap();
    let message = format!(
        "cannot read key {}: Permission denied (os error 13)",
        s(&pair.key)
    );
    let args = tls_args(l, &pair.cert, Some(&pair.key));
    if !is_root() {
        refused(&args, l, &message);
        return;
    }
    // Root reads any file: run camtls as nobody, for whom mode 000 means no.
    use std::os::unix::process::CommandExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        let mut cmd = camtls();
        cmd.uid(65534).gid(65534);
        cmd
    };
    let runs = as_nobody()
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        println!("skipped: user nobody cannot run the binary under test from where it is");
        return;
    }
    let mut cmd = as_nobody();
    cmd.args(&args);
    let ran = run_to_exit(cmd);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .lines()
            .any(|x| x == format!("camtls: {message}")),
        "{ran:?}"
    );
    assert!(nothing_listens(l));
}

#[test]
fn port_in_use_is_named_and_no_route_is_served() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let free = closed_port();
    // The reason after the address is the C library's: "Address already in
    // use (os error 98)" with glibc, "Address in use (os error 125)" with
    // musl on MIPS.
    let message = format!("cannot listen on {busy}: Address ");
    let mut args = tls_args(busy, &pair.cert, Some(&pair.key));
    refused_starting(&args, free, &message);
    // A free route before the busy one is not served either.
    args.splice(0..2, strings(&["--route", &format!("{free}=127.0.0.1:9")]));
    args.extend(strings(&["--route", &format!("{busy}=127.0.0.1:9")]));
    refused_starting(&args, free, &message);
}

/// The user sees each start-up failure once: on the terminal, not again
/// through the log.
#[test]
fn a_startup_error_is_printed_once() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let other = write_pair(&dir, KeyKind::Rsa);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let missing = dir.path("missing.pem");
    let cases = [
        (
            tls_args(busy, &missing, Some(&pair.key)),
            format!("cannot read certificate {}", s(&missing)),
        ),
        (
            tls_args(busy, &pair.cert, Some(&other.key)),
            "does not match certificate".to_string(),
        ),
        (
            tls_args(busy, &pair.cert, Some(&pair.key)),
            format!("cannot listen on {busy}"),
        ),
    ];
    for (args, text) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = run_camtls(&args);
        assert_eq!(ran.code, Some(1));
        assert_eq!(
            ran.stderr_lines_with(&text).len(),
            1,
            "the error is printed more than once:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn check_validates_and_serves_nothing() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let l = closed_port();
    let mut args = tls_args(l, &pair.cert, Some(&pair.key));
    args.extend(strings(&["--route", "8443=cam.lan:8080", "--check"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_camtls(&args);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        format!("route {l} -> http://127.0.0.1:9\nroute *:8443 -> http://cam.lan:8080\nconfiguration OK\n")
    );
    assert!(
        ran.stderr.contains(&format!(
            "certificate {} SHA-256 fingerprint {}",
            s(&pair.cert),
            fingerprint(&pair.x509)
        )),
        "{ran:?}"
    );
    assert!(!ran.stderr.contains("listening on"), "{ran:?}");
    assert!(nothing_listens(l));

    let ran = run_camtls(&["--route", &format!("{l}=127.0.0.1:9"), "--plain", "--check"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        format!("route {l} -> http://127.0.0.1:9\nconfiguration OK\n")
    );
}

/// Starts camtls with `cert` (and `key`), then fetches through it; returns
/// the chain the client received.
fn serves_with(cert: &Path, key: Option<&Path>, leaf: &X509) -> Vec<X509> {
    let (backend, _heads) = Backend::fixed(HELLO);
    let mut a = strings(&["--route", &format!("127.0.0.1:0={}", backend.addr)]);
    a.extend(["--cert".into(), s(cert)]);
    if let Some(key) = key {
        a.extend(["--key".into(), s(key)]);
    }
    let proxy = Proxy::start(&a);
    let tls = tls_connect(proxy.addr());
    let peer = tls.ssl().peer_certificate().unwrap();
    assert_eq!(fingerprint(&peer), fingerprint(leaf));
    let chain = tls
        .ssl()
        .peer_cert_chain()
        .unwrap()
        .iter()
        .map(|c| c.to_owned())
        .collect();
    let mut client = ResponseReader::new(tls);
    client.send(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n");
    assert!(client.fill_to(HELLO.len()));
    assert_eq!(client.take(HELLO.len()), HELLO);
    chain
}

fn x509_of(path: &Path) -> X509 {
    X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_key_form_is_served() {
    let dir = TempDir::new();
    let forms: [(&str, &[&str], &str); 4] = [
        (
            "traditional-rsa",
            &["genrsa", "-traditional", "2048"],
            "-----BEGIN RSA PRIVATE KEY-----",
        ),
        (
            "sec1-ec",
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            "-----BEGIN EC PRIVATE KEY-----",
        ),
        (
            "pkcs8-rsa",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            "-----BEGIN PRIVATE KEY-----",
        ),
        (
            "pkcs8-ec",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            "-----BEGIN PRIVATE KEY-----",
        ),
    ];
    for (name, key_args, header) in forms {
        let pair = cli_pair(&dir, name, key_args);
        let key_pem = std::fs::read_to_string(&pair.key).unwrap();
        assert!(key_pem.starts_with(header), "{name}: {key_pem}");
        let leaf = x509_of(&pair.cert);
        serves_with(&pair.cert, Some(&pair.key), &leaf);

        // One file holding both, in either order (Tomato's server.pem), and
        // no --key.
        let cert_pem = std::fs::read_to_string(&pair.cert).unwrap();
        for (order, both) in [
            ("cert-first", format!("{cert_pem}{key_pem}")),
            ("key-first", format!("{key_pem}{cert_pem}")),
        ] {
            let path = dir.path(&format!("{name}-{order}.pem"));
            write_private(&path, both.as_bytes());
            serves_with(&path, None, &leaf);
        }
    }
}

#[test]
fn intermediate_after_the_leaf_reaches_the_client() {
    let dir = TempDir::new();
    let (root, intermediate, leaf, key) = issued_chain();
    let cert = dir.path("fullchain.pem");
    let mut pem = leaf.to_pem().unwrap();
    pem.extend(intermediate.to_pem().unwrap());
    std::fs::write(&cert, pem).unwrap();
    let key_path = dir.path("leaf.key");
    write_private(&key_path, &key.private_key_to_pem_pkcs8().unwrap());

    let chain = serves_with(&cert, Some(&key_path), &leaf);
    assert_eq!(chain.len(), 2, "leaf and intermediate");
    assert_eq!(fingerprint(&chain[1]), fingerprint(&intermediate));

    // A client that trusts only the root verifies the chain it was sent.
    let (backend, _heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&[
        "--route".into(),
        format!("127.0.0.1:0={}", backend.addr),
        "--cert".into(),
        s(&cert),
        "--key".into(),
        s(&key_path),
    ]);
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.cert_store_mut().add_cert(root.clone()).unwrap();
    let connector = b.build();
    let tcp = std::net::TcpStream::connect(proxy.addr()).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    connector
        .connect("localhost", tcp)
        .expect("the chain verifies against the root alone");

    // openssl s_client as a separate client: depth 2 verified, return code 0.
    let root_path = dir.path("root.pem");
    std::fs::write(&root_path, root.to_pem().unwrap()).unwrap();
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &proxy.addr().to_string(),
            "-CAfile",
            root_path.to_str().unwrap(),
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-showcerts",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert_eq!(
        text.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{text}"
    );
}

#[test]
fn default_paths_are_tomatos() {
    let l = closed_port();
    let route = format!("{l}=127.0.0.1:9");
    if Path::new("/tmp/etc/cert.pem").exists() {
        println!("skipped the missing-file check: /tmp/etc/cert.pem exists on this machine");
    } else {
        refused(
            &strings(&["--route", &route]),
            l,
            "cannot read certificate /tmp/etc/cert.pem: No such file or directory (os error 2)",
        );
    }
    if !can_unshare_mounts() {
        println!("skipped the /tmp/etc files check: needs root and unshare --mount");
        return;
    }
    // In a private mount namespace a directory of the test's is /tmp, so
    // camtls finds files at /tmp/etc without anything written there. The
    // binary is opened before the mount hides it.
    let dir = TempDir::new();
    std::fs::create_dir(dir.path("etc")).unwrap();
    let pair = write_pair(&dir, KeyKind::Rsa);
    std::fs::copy(&pair.cert, dir.path("etc/cert.pem")).unwrap();
    let words = camtls_command_words();
    let (runner, bin) = words.split_at(words.len() - 1);
    let in_namespace = |camtls_args: &str| {
        let script = format!(
            "exec 3<{bin} && mount --bind {dir} /tmp && exec {runner} /proc/self/fd/3 {camtls_args}",
            bin = sh_quote(&bin[0]),
            dir = sh_quote(&s(&dir.0)),
            runner = runner.iter().map(|w| sh_quote(w)).collect::<Vec<_>>().join(" "),
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        cmd.stdin(std::process::Stdio::null());
        run_to_exit(cmd)
    };
    let ran = in_namespace(&format!("--route {route} --check"));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.lines().any(|x| x
            == "camtls: cannot read key /tmp/etc/key.pem: No such file or directory (os error 2)"),
        "{ran:?}"
    );
    std::fs::copy(&pair.key, dir.path("etc/key.pem")).unwrap();
    let ran = in_namespace(&format!("--route {route} --check"));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "certificate /tmp/etc/cert.pem SHA-256 fingerprint {}",
            fingerprint(&pair.x509)
        )),
        "{ran:?}"
    );
    assert!(ran.stdout.ends_with("configuration OK\n"), "{ran:?}");
}

fn warnings(proxy: &Proxy) -> Vec<String> {
    proxy
        .log()
        .lines()
        .filter(|l| l.starts_with("WARN"))
        .map(String::from)
        .collect()
}

#[test]
fn start_logs_fingerprint_and_warns_about_open_key_and_expiry() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);

    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let line = proxy.wait_for_log("fingerprint");
    assert!(
        line.ends_with(&format!(
            "certificate {} SHA-256 fingerprint {}",
            s(&pair.cert),
            fingerprint(&pair.x509)
        )),
        "{line}"
    );
    assert!(line.starts_with("INFO"), "{line}");
    assert_eq!(
        warnings(&proxy),
        Vec::<String>::new(),
        "a 0600 key, a valid certificate"
    );
    drop(proxy);

    std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    proxy.wait_for_log("listening on");
    assert_eq!(
        warnings(&proxy),
        [format!(
            "WARN  [camtls::app] key file {} is readable by group or others (mode 640); chmod 600 it",
            s(&pair.key)
        )]
    );
    drop(proxy);

    // The key inside a world-readable certificate file.
    let both = dir.path("server.pem");
    std::fs::write(
        &both,
        [
            std::fs::read(&pair.cert).unwrap(),
            std::fs::read(&pair.key).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::set_permissions(&both, std::fs::Permissions::from_mode(0o644)).unwrap();
    let proxy = Proxy::start(&strings(&[
        "--route",
        &format!("127.0.0.1:0={}", backend.addr),
        "--cert",
        &s(&both),
    ]));
    proxy.wait_for_log("listening on");
    assert_eq!(
        warnings(&proxy),
        [format!(
            "WARN  [camtls::app] key file {} is readable by group or others (mode 644); chmod 600 it",
            s(&both)
        )]
    );
    drop(proxy);

    // An expired certificate still serves, with a warning.
    let key = new_key(KeyKind::Ecdsa);
    let expired = {
        let valid = new_cert(&key, "localhost", None);
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(valid.serial_number()).unwrap();
        b.set_subject_name(valid.subject_name()).unwrap();
        b.set_issuer_name(valid.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        b.set_not_before(&Asn1Time::from_unix(now - 40 * 86400).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(now - 10 * 86400).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        b.build()
    };
    let cert = dir.path("expired.crt");
    let key_path = dir.path("expired.key");
    std::fs::write(&cert, expired.to_pem().unwrap()).unwrap();
    write_private(&key_path, &key.private_key_to_pem_pkcs8().unwrap());
    let proxy = Proxy::start(&strings(&[
        "--route",
        &format!("127.0.0.1:0={}", backend.addr),
        "--cert",
        &s(&cert),
        "--key",
        &s(&key_path),
    ]));
    proxy.wait_for_log("listening on");
    assert_eq!(
        warnings(&proxy),
        [format!(
            "WARN  [camtls::app] certificate {} expired on {}",
            s(&cert),
            expired.not_after()
        )]
    );
    let tls = tls_connect(proxy.addr());
    assert_eq!(
        fingerprint(&tls.ssl().peer_certificate().unwrap()),
        fingerprint(&expired)
    );
}

fn openssl_fingerprint(path: &Path) -> String {
    let out = openssl_cli(&[
        "x509",
        "-noout",
        "-fingerprint",
        "-sha256",
        "-in",
        path.to_str().unwrap(),
    ]);
    // "sha256 Fingerprint=AB:CD:..." (the label's case varies by version).
    out.trim().split_once('=').unwrap().1.to_string()
}

fn gen_cert(args: &[&str]) -> Ran {
    let mut a = vec!["gen-cert"];
    a.extend_from_slice(args);
    run_camtls(&a)
}

#[test]
fn gen_cert_writes_a_usable_pair() {
    let dir = TempDir::new();
    let cert = dir.path("cert.pem");
    let key = dir.path("key.pem");
    let (c, k) = (s(&cert), s(&key));
    let ran = gen_cert(&["--cert", &c, "--key", &k]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let x509 = x509_of(&cert);
    assert_eq!(
        ran.stdout,
        format!(
            "wrote {c} and {k}\nSHA-256 fingerprint {}\n",
            openssl_fingerprint(&cert)
        )
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // ECDSA P-256 by default; localhost when no --name; 825 days.
    let public = x509.public_key().unwrap();
    assert_eq!(public.id(), Id::EC);
    assert_eq!(
        public.ec_key().unwrap().group().curve_name(),
        Some(openssl::nid::Nid::X9_62_PRIME256V1)
    );
    let text = openssl_cli(&["x509", "-noout", "-text", "-in", &c]);
    assert!(text.contains("DNS:localhost"), "{text}");
    let days = x509.not_before().diff(x509.not_after()).unwrap();
    // Valid from an hour back, for clocks that run behind.
    assert_eq!(days.days, 825, "{days:?}");
    assert!(days.secs >= 3599 && days.secs <= 3601, "{days:?}");
    openssl_cli(&["x509", "-checkend", "0", "-noout", "-in", &c]);
    serves_with(&cert, Some(&key), &x509);

    // Refuses to overwrite, and leaves both files as they were.
    let before = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let ran = gen_cert(&["--cert", &c, "--key", &k, "--rsa"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!("camtls: {c} already exists; add --force to replace it\n")
    );
    let ran = gen_cert(&["--cert", &s(&dir.path("new.crt")), "--key", &k]);
    assert_eq!(
        ran.stderr,
        format!("camtls: {k} already exists; add --force to replace it\n")
    );
    assert!(
        !dir.path("new.crt").exists(),
        "nothing written when one file exists"
    );
    assert_eq!(
        (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()),
        before
    );

    // --force --rsa --name --days: a new RSA pair naming the router every way
    // it is reached; a key file that was open is made 0600.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ran = gen_cert(&[
        "--cert",
        &c,
        "--key",
        &k,
        "--force",
        "--rsa",
        "--name",
        "router.lan",
        "--name",
        "192.168.1.1",
        "--name",
        "fd00::1",
        "--name",
        "*.home.example",
        "--days",
        "30",
    ]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let x509 = x509_of(&cert);
    assert_ne!(x509.to_pem().unwrap(), before.0);
    assert_eq!(x509.public_key().unwrap().id(), Id::RSA);
    assert_eq!(x509.public_key().unwrap().bits(), 2048);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = openssl_cli(&["x509", "-noout", "-text", "-in", &c]);
    assert!(
        text.contains(
            "DNS:router.lan, IP Address:192.168.1.1, IP Address:FD00:0:0:0:0:0:0:1, DNS:*.home.example"
        ),
        "{text}"
    );
    assert!(text.contains("Subject: CN = router.lan"), "{text}");
    let days = x509.not_before().diff(x509.not_after()).unwrap();
    assert_eq!(days.days, 30, "{days:?}");
    let key_pem = std::fs::read_to_string(&key).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    serves_with(&cert, Some(&key), &x509);
}

#[test]
fn gen_cert_refuses_bad_names_and_days() {
    let dir = TempDir::new();
    let c = s(&dir.path("cert.pem"));
    let k = s(&dir.path("key.pem"));
    for (args, message) in [
        (
            vec!["--name", "my router"],
            r#"--name "my router" is not a DNS name or IP address"#,
        ),
        (
            vec!["--name", ""],
            r#"--name "" is not a DNS name or IP address"#,
        ),
        (
            vec!["--name", "cam/1"],
            r#"--name "cam/1" is not a DNS name or IP address"#,
        ),
        (vec!["--days", "0"], "--days must be at least 1"),
    ] {
        let mut a = vec!["--cert", c.as_str(), "--key", k.as_str()];
        a.extend(args);
        let ran = gen_cert(&a);
        assert_eq!(ran.code, Some(1), "{ran:?}");
        assert_eq!(ran.stderr, format!("camtls: {message}\n"));
        assert!(!Path::new(&c).exists() && !Path::new(&k).exists());
    }
}

#[test]
fn fingerprint_matches_openssl() {
    let dir = TempDir::new();
    for kind in [KeyKind::Ecdsa, KeyKind::Rsa] {
        let pair = write_pair(&dir, kind);
        let ran = run_camtls(&["fingerprint", &s(&pair.cert)]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        assert_eq!(ran.stdout, format!("{}\n", openssl_fingerprint(&pair.cert)));
        assert_eq!(ran.stdout.trim(), fingerprint(&pair.x509));
    }
    // A chain file: the leaf, the first certificate, is the one printed.
    let (_root, intermediate, leaf, _key) = issued_chain();
    let chain = dir.path("chain.pem");
    std::fs::write(
        &chain,
        [leaf.to_pem().unwrap(), intermediate.to_pem().unwrap()].concat(),
    )
    .unwrap();
    let ran = run_camtls(&["fingerprint", &s(&chain)]);
    assert_eq!(ran.stdout, format!("{}\n", openssl_fingerprint(&chain)));
    assert_eq!(ran.stdout.trim(), fingerprint(&leaf));

    let missing = dir.path("none.pem");
    let ran = run_camtls(&["fingerprint", &s(&missing)]);
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!(
            "camtls: cannot read certificate {}: No such file or directory (os error 2)\n",
            s(&missing)
        )
    );
}
