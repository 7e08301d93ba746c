//! What clients see when they get it wrong: a request line that is not
//! HTTP, and plain HTTP typed at the HTTPS port (answered with a redirect to
//! https, never forwarded, under the same limits; anything else that is not
//! TLS is closed without a word).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

struct Setup {
    _dir: TempDir,
    backend: Backend,
    proxy: Proxy,
}

fn setup(extra: &[&str]) -> Setup {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), extra));
    Setup {
        _dir: dir,
        backend,
        proxy,
    }
}

fn status_of(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    text.lines().next().unwrap_or("").to_string()
}

#[test]
fn a_version_that_is_not_http_is_400_and_an_unknown_http_version_505() {
    let s = setup(&[]);
    for (line, want) in [
        ("GET /x FOO/1.1", "HTTP/1.1 400 Bad Request"),
        ("GET /x HTTP/x.y", "HTTP/1.1 400 Bad Request"),
        ("GET /x HTTP/1.10", "HTTP/1.1 400 Bad Request"),
        ("GET /x HTTP/2.0", "HTTP/1.1 505 HTTP Version Not Supported"),
        ("GET /x HTTP/1.2", "HTTP/1.1 505 HTTP Version Not Supported"),
    ] {
        let mut tls = tls_connect(s.proxy.addr());
        tls.write_all(format!("{line}\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(status_of(&read_to_close(&mut tls)), want, "{line}");
    }
    assert_eq!(s.backend.connection_count(), 0);
}

/// Plain text to the TLS port; everything it answers, to its close.
fn plain(s: &Setup, bytes: &[u8]) -> String {
    let mut tcp = plain_connect(s.proxy.addr());
    tcp.write_all(bytes).unwrap();
    String::from_utf8_lossy(&read_to_close(&mut tcp)).into_owned()
}

#[test]
fn plain_http_on_the_https_port_is_redirected_to_https() {
    let s = setup(&[]);
    let got = plain(
        &s,
        b"GET /video.cgi?res=1 HTTP/1.1\r\nHost: router.lan:8443\r\nUser-Agent: t\r\n\r\n",
    );
    assert_eq!(
        got,
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://router.lan:8443/video.cgi?res=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // A POST stays a POST (308); its body is never forwarded.
    let got = plain(
        &s,
        b"POST /cgi-bin/ptz HTTP/1.1\r\nHost: cam.example.org:8443\r\nContent-Length: 5\r\n\r\nright",
    );
    assert!(
        got.starts_with(
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://cam.example.org:8443/cgi-bin/ptz\r\n"
        ),
        "{got}"
    );
    // No Host: the address the client reached.
    let got = plain(&s, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        got.contains(&format!("\r\nLocation: https://{}/\r\n", s.proxy.addr())),
        "{got}"
    );
    assert_eq!(s.backend.connection_count(), 0, "nothing was forwarded");
    // TLS on the same port still works.
    let mut c = ResponseReader::new(tls_connect(s.proxy.addr()));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().status, 200);
}

#[test]
fn anything_else_that_is_not_tls_is_closed_quietly() {
    let s = setup(&[]);
    s.proxy.wait_for_log("listening on");
    let before = s.proxy.log().lines().count();
    for junk in [
        b"\x00\x01\x02\x03garbage\r\n\r\n".as_slice(),
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"get / http/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    ] {
        assert_eq!(plain(&s, junk), "", "{junk:?}");
    }
    // Nothing at info level per connection.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.proxy.log().lines().count(), before, "{}", s.proxy.log());
    assert_eq!(s.backend.connection_count(), 0);
}

#[test]
fn plain_heads_keep_the_head_limits_and_timeout() {
    let s = setup(&["--head-timeout", "2"]);
    // Larger than a head may be: closed, no answer.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(17_000)
    );
    let mut tcp = plain_connect(s.proxy.addr());
    let _ = tcp.write_all(big.as_bytes());
    let got = read_to_close(&mut tcp);
    assert!(!String::from_utf8_lossy(&got).contains("Location"));
    // A head that never ends: closed at the head timeout. Under qemu-user
    // the binary is slower to notice, so the upper bound is wide.
    let mut tcp = plain_connect(s.proxy.addr());
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
}

#[test]
fn addresses_outside_allow_get_no_redirect() {
    // 127.0.0.1 is outside the only allowed range.
    let s = setup(&["--allow", "10.0.0.0/8"]);
    let mut tcp = TcpStream::connect(s.proxy.addr()).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(read_to_close(&mut tcp), b"");
}

#[test]
fn locked_out_addresses_get_no_redirect() {
    let dir = TempDir::new();
    let users = dir.path("users");
    let hash = run_camtls_with_input(&["hash-password", "--user", "alice"], "secret\n");
    std::fs::write(&users, hash).unwrap();
    let users = users.display().to_string();
    let s = setup(&["--auth-file", &users]);
    // Five wrong passwords lock 127.0.0.1 out.
    for _ in 0..5 {
        let mut c = ResponseReader::new(tls_connect(s.proxy.addr()));
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n");
        let _ = c.response("GET");
    }
    s.proxy.wait_for_log("refused for");
    let got = plain(&s, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(got, "");
}

fn run_camtls_with_input(args: &[&str], input: &str) -> String {
    let mut child = camtls()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}
