//! Logins at the proxy, the device's own login sent by camtls, address
//! allowlists and the failed-login lockout, through the real binary.

mod support;

use std::io::{Read, Write};
use std::process::Stdio;

use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        openssl::base64::encode_block(user_pass.as_bytes())
    )
}

/// `camtls hash-password --user NAME` with the password on standard input.
fn hash_line(user: &str, password: &str) -> String {
    let mut child = camtls()
        .args(["hash-password", "--user", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with(&format!("{user}:$pbkdf2-sha256$")),
        "{line}"
    );
    assert!(!line.contains(password));
    line
}

fn auth_file(dir: &TempDir) -> String {
    let path = dir.path("users");
    let text = hash_line("viewer", "correct horse") + &hash_line("admin", "battery staple");
    write_private(&path, text.as_bytes());
    path.display().to_string()
}

/// One request on an open connection, logged in as `user_pass`.
fn get_as<S: Read + Write>(c: &mut ResponseReader<S>, user_pass: &str) -> u16 {
    c.send(
        format!(
            "GET /cam HTTP/1.1\r\nHost: a\r\nAuthorization: {}\r\n\r\n",
            basic(user_pass)
        )
        .as_bytes(),
    );
    c.response("GET").unwrap().status
}

fn get(addr: std::net::SocketAddr, authorization: Option<&str>) -> (Reply, bool) {
    let mut c = ResponseReader::new(tls_connect(addr));
    let extra = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    c.send(format!("GET /cam HTTP/1.1\r\nHost: a\r\n{extra}\r\n").as_bytes());
    let reply = c.response("GET").unwrap();
    // Is the connection still open for another request?
    c.send(b"GET /cam HTTP/1.1\r\nHost: a\r\n\r\n");
    let open = c.response("GET").is_some();
    (reply, open)
}

#[test]
fn login_at_the_proxy() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let users = auth_file(&dir);
    let (backend, heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &["--auth-file", &users]));

    let (reply, still_open) = get(proxy.addr(), None);
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate").as_deref(),
        Some("Basic realm=\"camtls\", charset=\"UTF-8\"")
    );
    assert!(
        still_open,
        "a 401 for a bodiless request keeps the connection"
    );
    assert_eq!(backend.connection_count(), 0);

    assert_eq!(
        get(proxy.addr(), Some(&basic("viewer:wrong"))).0.status,
        401
    );
    assert_eq!(
        get(proxy.addr(), Some(&basic("nobody:correct horse")))
            .0
            .status,
        401
    );
    assert_eq!(get(proxy.addr(), Some("Basic !!!not-base64")).0.status, 401);

    let mut c = ResponseReader::new(tls_connect(proxy.addr()));
    for _ in 0..3 {
        c.send(
            format!(
                "GET /cam HTTP/1.1\r\nHost: a\r\nAuthorization: {}\r\n\r\n",
                basic("viewer:correct horse")
            )
            .as_bytes(),
        );
        assert_eq!(c.response("GET").unwrap().text(), "hello");
    }
    // The proxy's own login never reaches the camera.
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    let log = proxy.log();
    assert!(!log.contains("correct horse") && !log.contains(&basic("viewer:correct horse")[6..]));
}

#[test]
fn failed_logins_lock_the_address_out() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let users = auth_file(&dir);
    let (backend, _heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &["--auth-file", &users]));
    // Four failures leave room for one more try...
    for _ in 0..4 {
        assert_eq!(get(proxy.addr(), Some(&basic("admin:guess"))).0.status, 401);
    }
    // ...the fifth blocks: 403, then connections are closed before TLS.
    let (reply, open) = get(proxy.addr(), Some(&basic("admin:guess")));
    assert_eq!(reply.status, 403);
    assert!(!open);
    proxy.wait_for_log("failed logins from 127.0.0.1");
    let mut tcp = plain_connect(proxy.addr());
    let mut buf = [0u8; 8];
    assert_eq!(
        tcp.read(&mut buf).unwrap_or(0),
        0,
        "blocked address still served"
    );
    // Even the right password is refused while blocked.
    let tcp = plain_connect(proxy.addr());
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    assert!(b.build().connect("localhost", tcp).is_err());
}

#[test]
fn camtls_logs_in_to_the_camera() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&args(
        backend.addr,
        Some(&pair),
        &["--backend-auth", "admin:cam pass"],
    ));
    let (reply, _) = get(proxy.addr(), Some("Basic c3B5OnNweQ=="));
    assert_eq!(reply.status, 200);
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(
        head.contains(&format!("Authorization: {}\r\n", basic("admin:cam pass"))),
        "{head}"
    );
    assert!(
        !head.contains("c3B5OnNweQ=="),
        "the client's own Authorization was forwarded"
    );
    assert!(!proxy.log().contains("cam pass"));
    // get() sent a second request to see whether the connection stayed open.
    while heads.try_recv().is_ok() {}

    // From a file, per route, alongside a route that passes the client's
    // Authorization (a camera's own digest login) through untouched.
    let secret = dir.path("cam.pass");
    write_private(&secret, b"operator:s3cret\n");
    let proxy = Proxy::start(&[
        "--route".into(),
        format!(
            "127.0.0.1:0={},backend-auth-file={}",
            backend.addr,
            secret.display()
        ),
        "--route".into(),
        format!("127.0.0.1:0={}", backend.addr),
        "--cert".into(),
        pair.cert.display().to_string(),
        "--key".into(),
        pair.key.display().to_string(),
    ]);
    get(proxy.addrs[0], None);
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(
        head.contains(&format!("Authorization: {}\r\n", basic("operator:s3cret"))),
        "{head}"
    );
    while heads.try_recv().is_ok() {}
    get(
        proxy.addrs[1],
        Some("Digest username=\"u\", response=\"r\""),
    );
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(
        head.contains("Authorization: Digest username=\"u\", response=\"r\"\r\n"),
        "{head}"
    );
}

#[test]
fn allowlists_close_other_clients_before_the_handshake() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&[
        "--route".into(),
        format!("127.0.0.1:0={}", backend.addr),
        "--route".into(),
        format!("127.0.0.1:0={},allow=127.0.0.0/8", backend.addr),
        "--allow".into(),
        "192.168.1.0/24".into(),
        "--allow".into(),
        "2001:db8::/32".into(),
        "--cert".into(),
        pair.cert.display().to_string(),
        "--key".into(),
        pair.key.display().to_string(),
    ]);
    // Route 0 takes the command-line ranges, which leave out loopback.
    let mut tcp = plain_connect(proxy.addrs[0]);
    let mut buf = [0u8; 8];
    assert_eq!(tcp.read(&mut buf).unwrap_or(0), 0);
    // Route 1 has its own range, which takes loopback in.
    assert_eq!(get(proxy.addrs[1], None).0.status, 200);
}

#[test]
fn bad_guard_settings_stop_camtls_before_serving() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let plaintext = dir.path("plain-users");
    write_private(&plaintext, b"admin:admin\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--allow".into(), "192.168.1.0/33".into()], "--allow"),
        (
            vec![
                "--auth-file".into(),
                dir.path("missing").display().to_string(),
            ],
            "missing",
        ),
        (
            vec!["--auth-file".into(), plaintext.display().to_string()],
            "plain-users",
        ),
        (
            vec!["--backend-auth".into(), "no-colon".into()],
            "--backend-auth",
        ),
        (
            vec![
                "--backend-auth".into(),
                "a:b".into(),
                "--backend-auth-file".into(),
                "/x".into(),
            ],
            "--backend-auth-file",
        ),
    ];
    for (extra, expected) in cases {
        let mut a = args(closed_port(), Some(&pair), &[]);
        a.extend(extra);
        let out = camtls().args(&a).stderr(Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{a:?} started");
        assert!(err.contains(expected), "{a:?}: {err}");
        assert!(!err.contains("listening"), "{err}");
        assert!(!err.contains("admin:admin"), "a password was echoed: {err}");
    }
}

#[test]
fn sighup_rereads_the_logins() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let users = dir.path("users");
    write_private(&users, hash_line("viewer", "first").as_bytes());
    let (backend, _heads) = Backend::fixed(HELLO);
    let mut proxy = Proxy::start(&args(
        backend.addr,
        Some(&pair),
        &["--auth-file", &users.display().to_string()],
    ));
    let mut open = ResponseReader::new(tls_connect(proxy.addr()));
    assert_eq!(get_as(&mut open, "viewer:first"), 200);
    assert_eq!(
        get(proxy.addr(), Some(&basic("guest:second"))).0.status,
        401
    );

    write_private(
        &users,
        (hash_line("viewer", "first") + &hash_line("guest", "second")).as_bytes(),
    );
    proxy.signal(nix::sys::signal::Signal::SIGHUP);
    proxy.wait_for_log("certificate reloaded");
    assert_eq!(
        get(proxy.addr(), Some(&basic("guest:second"))).0.status,
        200
    );
    // A broken file on reload keeps the logins in use.
    write_private(&users, b"guest:plaintext\n");
    proxy.signal(nix::sys::signal::Signal::SIGHUP);
    proxy.wait_for_log("still using the previous logins");
    assert_eq!(
        get(proxy.addr(), Some(&basic("guest:second"))).0.status,
        200
    );
    // The connection opened before the reloads carries on.
    assert_eq!(get_as(&mut open, "viewer:first"), 200);
    proxy.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(proxy.wait_exit(), Some(0));
}
