//! Inputs that once took camtls down, sent through the real binary over TLS
//! (issue 15): each must get its answer, and the process must serve the
//! next connection. The release build aborts on a panic, so one such request
//! used to end every stream at once. The fuzz targets that check the same
//! parsers are in src/fuzzing.rs; the inputs they found are in
//! fuzz/regressions/.

mod support;

use std::net::TcpStream;

use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn client(proxy: &Proxy) -> ResponseReader<openssl::ssl::SslStream<TcpStream>> {
    ResponseReader::new(tls_connect(proxy.addr()))
}

/// camtls is still running and answers a plain request on a new connection.
fn still_serves(proxy: &mut Proxy, path: &str, status: u16) {
    assert!(
        proxy.child.try_wait().unwrap().is_none(),
        "camtls exited: {}",
        proxy.log()
    );
    let mut c = client(proxy);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    let reply = c.response("GET").expect("an answer on a new connection");
    assert_eq!(reply.status, status, "{}", proxy.log());
}

#[test]
fn request_targets_with_multibyte_characters_get_400() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, heads) = Backend::fixed(HELLO);
    let mut proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    // "Ѐ" is two bytes: each target once had a str cut inside it.
    for target in ["abcdefgЀ", "abcdefЀ", "http:/Ѐx"] {
        let mut c = client(&proxy);
        c.send(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        let reply = c
            .response("GET")
            .expect("an answer, not a dropped connection");
        assert_eq!(reply.status, 400, "{target}: {}", proxy.log());
        assert_eq!(
            reply.text(),
            "400 Bad Request: invalid request target\n",
            "{target}"
        );
        assert!(c.is_closed(), "{target}: connection left open");
        still_serves(&mut proxy, "/", 200);
    }
    // Only the good requests reached the backend.
    assert_eq!(heads.try_iter().count(), 3);
    // A target with such characters in its path is passed on as it is.
    let mut c = client(&proxy);
    c.send("GET /a登录.htm HTTP/1.1\r\nHost: localhost\r\n\r\n".as_bytes());
    assert_eq!(c.response("GET").unwrap().status, 200);
    let head = heads.recv_timeout(WAIT).unwrap();
    assert!(head.starts_with("GET /a登录.htm HTTP/1.1\r\n"), "{head}");
}

#[test]
fn locations_with_multibyte_characters_are_passed_or_rewritten() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    // The backend answers each path with a redirect built from it:
    // /say/VALUE answers `Location: VALUE`, with BACKEND replaced by the
    // backend's own address.
    let backend = Backend::start(|mut conn| {
        let own = conn.stream.local_addr().unwrap();
        while let Some(head) = conn.head() {
            let path = head.split(' ').nth(1).unwrap_or("/");
            let value = path
                .strip_prefix("/say/")
                .unwrap_or("/")
                .replace("BACKEND", &own.to_string());
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: {value}\r\nContent-Location: {value}\r\nContent-Length: 0\r\n\r\n"
            );
            if !conn.send(reply.as_bytes()) {
                break;
            }
        }
    });
    let mut proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let cases = [
        // Relative: passed byte for byte.
        ("/a登录.htm", "/a登录.htm".to_string()),
        // The backend's own URL: rewritten to the address the client used.
        (
            "http://BACKEND/a登录.htm",
            "https://cam.example:8443/a登录.htm".to_string(),
        ),
        (
            "HTTP://BACKEND/a登录.htm?q=Ѐ",
            "https://cam.example:8443/a登录.htm?q=Ѐ".to_string(),
        ),
        // Another host, or a character where the port would be: left alone.
        (
            "http://elsewhere.example/登录",
            "http://elsewhere.example/登录".to_string(),
        ),
        (
            "http://BACKEND登录/x",
            format!("http://{}登录/x", backend.addr),
        ),
        ("登录", "登录".to_string()),
    ];
    // All on one keep-alive connection: none of them may end it.
    let mut c = client(&proxy);
    for (value, want) in &cases {
        c.send(format!("GET /say/{value} HTTP/1.1\r\nHost: cam.example:8443\r\n\r\n").as_bytes());
        let reply = c.response("GET").expect("an answer to each redirect");
        assert_eq!(reply.status, 302, "{value}: {}", proxy.log());
        assert_eq!(reply.header("location").as_deref(), Some(want.as_str()));
        assert_eq!(
            reply.header("content-location").as_deref(),
            Some(want.as_str())
        );
    }
    still_serves(&mut proxy, "/say//a登录.htm", 302);
}

#[test]
fn a_status_under_100_gets_502() {
    // Found by the `locations` fuzz target: httparse reads "020" as 20,
    // and camtls used to send the client "HTTP/1.1 20 OK".
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(b"HTTP/1.1 020 OK\r\nContent-Length: 0\r\n\r\n");
    let mut proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let mut c = client(&proxy);
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let reply = c.response("GET").expect("an answer");
    assert_eq!(reply.status, 502, "{}", proxy.log());
    still_serves(&mut proxy, "/", 502);
}
