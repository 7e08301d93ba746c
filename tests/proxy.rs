//! HTTP behaviour of the proxy, bad input and failures, every limit crossed:
//! the real binary on 127.0.0.1, a real TLS client, byte-exact assertions.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

struct Setup {
    _dir: TempDir,
    proxy: Proxy,
    backend: Backend,
}

fn setup(backend: Backend, extra: &[&str]) -> Setup {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), extra));
    Setup {
        _dir: dir,
        proxy,
        backend,
    }
}

fn client(s: &Setup) -> ResponseReader<openssl::ssl::SslStream<TcpStream>> {
    ResponseReader::new(tls_connect(s.proxy.addr()))
}

/// The exact response camtls sends for its own errors.
fn error_bytes(status: u16, reason: &str, detail: &str) -> Vec<u8> {
    let body = format!("{status} {reason}: {detail}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn refused_with(s: &Setup, request: &[u8], status: u16, reason: &str, detail: &str) {
    let mut c = client(s);
    c.send(request);
    let got = read_to_close(&mut c.stream);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&error_bytes(status, reason, detail))
    );
}

#[test]
fn malformed_heads_get_400_and_close() {
    let (backend, _heads) = Backend::fixed(HELLO);
    let s = setup(backend, &[]);
    for bad in [
        b"GARBAGE\r\n\r\n".as_slice(),
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let mut c = client(&s);
        c.send(bad);
        let reply = c.response("GET").unwrap();
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(bad));
        assert!(c.is_closed());
    }
    assert_eq!(s.backend.connection_count(), 0);
}

#[test]
fn oversized_heads_get_431() {
    let (backend, _heads) = Backend::fixed(HELLO);
    let s = setup(backend, &[]);
    let detail = "request head too large or too many header fields";
    // 16,320 bytes (16 KiB less 64) is the documented limit: just under
    // passes, over is refused.
    let filler = 16 * 1024 - 200;
    let ok = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(filler)
    );
    let mut c = client(&s);
    c.send(ok.as_bytes());
    assert_eq!(c.response("GET").unwrap().status, 200);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    refused_with(
        &s,
        big.as_bytes(),
        431,
        "Request Header Fields Too Large",
        detail,
    );
    // A head that never ends is refused once it passes the limit, not buffered.
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(20 * 1024));
    refused_with(
        &s,
        endless.as_bytes(),
        431,
        "Request Header Fields Too Large",
        detail,
    );
    let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..63 {
        many += &format!("X-{i}: v\r\n");
    }
    let mut c = client(&s);
    c.send((many.clone() + "\r\n").as_bytes());
    assert_eq!(
        c.response("GET").unwrap().status,
        200,
        "64 fields are allowed"
    );
    refused_with(
        &s,
        (many + "X-64: v\r\n\r\n").as_bytes(),
        431,
        "Request Header Fields Too Large",
        detail,
    );
}

#[test]
fn smuggling_shapes_are_refused() {
    let (backend, _heads) = Backend::fixed(HELLO);
    let s = setup(backend, &[]);
    refused_with(
        &s,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Bad Request",
        "Content-Length together with Transfer-Encoding",
    );
    refused_with(
        &s,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        "Bad Request",
        "conflicting Content-Length values",
    );
    refused_with(
        &s,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "Not Implemented",
        "only the chunked transfer coding is supported",
    );
    refused_with(
        &s,
        b"CONNECT 192.168.1.1:22 HTTP/1.1\r\nHost: 192.168.1.1:22\r\n\r\n",
        405,
        "Method Not Allowed",
        "CONNECT is not supported",
    );
    assert_eq!(s.backend.connection_count(), 0);
}

#[test]
fn backend_refused_gives_502_without_lan_details() {
    let dead = closed_port();
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let proxy = Proxy::start(&args(dead, Some(&pair), &[]));
    let mut c = ResponseReader::new(tls_connect(proxy.addr()));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let got = read_to_close(&mut c.stream);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&error_bytes(
            502,
            "Bad Gateway",
            "the device could not be reached or gave a bad answer"
        ))
    );
    assert!(!String::from_utf8_lossy(&got).contains(&dead.port().to_string()));
    // The address is in the log, for the owner.
    proxy.wait_for_log(&format!("{dead}"));
}

#[test]
fn silent_backend_gives_504() {
    let backend = Backend::start(|mut conn| {
        conn.head();
        thread::sleep(Duration::from_secs(4));
    });
    let s = setup(backend, &["--backend-timeout", "1"]);
    let start = Instant::now();
    refused_with(
        &s,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        504,
        "Gateway Timeout",
        "the device did not answer in time",
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn bad_backend_answers_give_502() {
    for answer in [
        b"NOT HTTP AT ALL\r\n\r\n".as_slice(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ] {
        let backend = Backend::start(move |mut conn| {
            conn.head();
            conn.send(answer);
            conn.close();
        });
        let s = setup(backend, &[]);
        let mut c = client(&s);
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let reply = c.response("GET").unwrap();
        assert_eq!(reply.status, 502, "{:?}", String::from_utf8_lossy(answer));
    }
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &["--handshake-timeout", "1"]);
    let mut tcp = plain_connect(s.proxy.addr());
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = tcp.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn slow_head_gets_408_after_the_head_timeout() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &["--head-timeout", "1"]);
    let mut c = client(&s);
    let start = Instant::now();
    c.send(b"GET / HTTP/1.1\r\n");
    // Trickle bytes: a slowloris client keeps sending, but too slowly.
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(300));
        let _ = c.stream.write_all(b"X");
    }
    let got = read_to_close(&mut c.stream);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&error_bytes(
            408,
            "Request Timeout",
            "the request head took too long"
        ))
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &["--idle-timeout", "1"]);
    let mut c = client(&s);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().status, 200);
    let start = Instant::now();
    assert!(c.is_closed());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn connection_limit_refuses_extra_clients_without_stalling() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &["--max-connections", "2"]);
    let mut first = client(&s);
    let mut second = client(&s);
    // Both have had an answer, so neither may be evicted for a newcomer
    // (tests/admission.rs has the unfinished ones that may).
    for c in [&mut first, &mut second] {
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.response("GET").unwrap().status, 200);
    }
    // The third is closed at once, before any handshake.
    let mut third = plain_connect(s.proxy.addr());
    let mut buf = [0u8; 8];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0);
    s.proxy.wait_for_log("connection limit (2) reached");
    for c in [&mut first, &mut second] {
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.response("GET").unwrap().status, 200);
    }
    drop(first);
    // The slot comes back once the first client has gone.
    let deadline = Instant::now() + WAIT;
    loop {
        let tcp = plain_connect(s.proxy.addr());
        let mut b =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
        b.set_verify(openssl::ssl::SslVerifyMode::NONE);
        if let Ok(tls) = b.build().connect("localhost", tcp) {
            let mut c = ResponseReader::new(tls);
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            if let Some(r) = c.response("GET") {
                assert_eq!(r.status, 200);
                break;
            }
        }
        assert!(Instant::now() < deadline, "slot never freed");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scanners_and_garbage_do_not_hurt_other_connections() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let backend = Backend::start(move |mut conn| {
        let head = conn.head().unwrap();
        if head.starts_with("GET /stream") {
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
            let _ = release_rx.lock().unwrap().recv_timeout(WAIT);
            conn.send(b"4\r\nlast\r\n0\r\n\r\n");
        } else {
            conn.send(HELLO);
        }
    });
    let s = setup(backend, &[]);
    let mut streaming = client(&s);
    streaming.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    let (status, _) = streaming.head().unwrap();
    assert_eq!(status, 200);
    assert!(streaming.fill_to(10));
    // Meanwhile: random bytes, plain HTTP on the TLS port, a TLS client that
    // hangs up mid-handshake, a client that connects and leaves.
    let mut junk = plain_connect(s.proxy.addr());
    junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert!(read_to_close(&mut junk).len() < 200);
    let mut http = plain_connect(s.proxy.addr());
    http.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let _ = read_to_close(&mut http);
    let mut half = plain_connect(s.proxy.addr());
    half.write_all(&[0x16, 0x03, 0x01, 0x00, 0x50]).unwrap();
    drop(half);
    drop(plain_connect(s.proxy.addr()));
    release_tx.send(()).unwrap();
    assert!(streaming.fill_to(24));
    assert_eq!(streaming.take(24), b"5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n");
    let mut fresh = client(&s);
    fresh.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(fresh.response("GET").unwrap().text(), "hello");
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_backend_connection() {
    let backend = Backend::start(|mut conn| {
        while let Some(head) = conn.head() {
            let path = head.split(' ').nth(1).unwrap().to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let body = conn.body(len);
            let text = format!("{path}:{}", String::from_utf8_lossy(&body));
            conn.send(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
                .as_bytes(),
            );
        }
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(
        b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(c.response("GET").unwrap().text(), "/one:");
    assert_eq!(c.response("POST").unwrap().text(), "/two:abc");
    assert_eq!(c.response("GET").unwrap().text(), "/three:");
    assert_eq!(s.backend.connection_count(), 1);
}

#[test]
fn request_bodies_are_forwarded_exactly() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let backend = Backend::start(move |mut conn| {
        while let Some(head) = conn.head() {
            let body = if head.contains("Transfer-Encoding: chunked") {
                // The last chunk, then the trailer section up to its blank line.
                let mut body = conn.until(b"\r\n0\r\n");
                body.extend(conn.until(b"\r\n\r\n"));
                body
            } else {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                conn.body(len)
            };
            tx.lock().unwrap().send((head, body)).unwrap();
            conn.send(HELLO);
        }
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    // A large body, sent in pieces, bigger than any buffer.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    c.send(
        format!(
            "PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            big.len()
        )
        .as_bytes(),
    );
    for piece in big.chunks(100_000) {
        c.send(piece);
    }
    assert_eq!(c.response("PUT").unwrap().status, 200);
    let (head, body) = rx.recv_timeout(WAIT).unwrap();
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", big.len())),
        "{head}"
    );
    assert!(body == big, "body differs");
    // Chunked, passed through with its framing.
    let chunked = b"3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n";
    c.send(b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(chunked);
    assert_eq!(c.response("POST").unwrap().status, 200);
    let (head, body) = rx.recv_timeout(WAIT).unwrap();
    assert!(head.contains("Transfer-Encoding: chunked\r\n"));
    assert_eq!(
        body,
        b"3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec()
    );
    // Broken chunked framing ends the connection rather than guessing.
    c.send(b"POST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert!(c.response("POST").is_none() || c.is_closed());
}

#[test]
fn expect_100_continue_is_answered() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let backend = Backend::start(move |mut conn| {
        let head = conn.head().unwrap();
        let body = conn.body(5);
        tx.lock().unwrap().send((head, body)).unwrap();
        conn.send(HELLO);
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(b"PUT /cfg HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let (status, head) = c.head().unwrap();
    assert_eq!(
        (status, head.as_str()),
        (100, "HTTP/1.1 100 Continue\r\n\r\n")
    );
    c.send(b"12345");
    assert_eq!(c.response("PUT").unwrap().text(), "hello");
    let (head, body) = rx.recv_timeout(WAIT).unwrap();
    assert!(!head.contains("Expect"), "{head}");
    assert_eq!(body, b"12345");
    refused_with(
        &s,
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx",
        417,
        "Expectation Failed",
        "only Expect: 100-continue is supported",
    );
}

#[test]
fn bodiless_responses_keep_the_connection_usable() {
    let backend = Backend::start(|mut conn| {
        while let Some(head) = conn.head() {
            let r: &[u8] = if head.starts_with("HEAD") {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            } else if head.starts_with("GET /204") {
                b"HTTP/1.1 204 No Content\r\n\r\n"
            } else if head.starts_with("GET /304") {
                b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
            } else if head.starts_with("GET /103") {
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            } else {
                HELLO
            };
            conn.send(r);
        }
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("HEAD").unwrap();
    assert_eq!(
        (r.status, r.header("content-length").as_deref()),
        (200, Some("1000"))
    );
    for path in ["/204", "/304"] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert!(c.response("GET").unwrap().body.is_empty());
    }
    c.send(b"GET /103 HTTP/1.1\r\nHost: a\r\n\r\n");
    let early = c.response("GET").unwrap();
    assert_eq!(
        early.head,
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    );
    assert_eq!(c.response("GET").unwrap().text(), "hello");
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().text(), "hello");
    assert_eq!(s.backend.connection_count(), 1);
}

#[test]
fn headers_are_rewritten_both_ways() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let backend = Backend::start(move |mut conn| {
        while let Some(head) = conn.head() {
            tx.lock().unwrap().send(head).unwrap();
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nServer: cam\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(b"GET http://evil.example/x HTTP/1.1\r\nHost: ignored\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: spoofed\r\nCookie: a=b\r\n\r\n");
    let r = c.response("GET").unwrap();
    assert_eq!(
        r.head,
        "HTTP/1.1 200 OK\r\nServer: cam\r\nContent-Length: 2\r\n\r\n"
    );
    let head = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        head,
        format!(
            "GET /x HTTP/1.1\r\nHost: {}\r\nCookie: a=b\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n\r\n",
            s.backend.addr
        )
    );
}

#[test]
fn preserve_host_passes_the_clients_host() {
    let (backend, heads) = Backend::fixed(HELLO);
    let s = setup(backend, &["--preserve-host"]);
    let mut c = client(&s);
    c.send(b"GET / HTTP/1.1\r\nHost: cam.example.org:8443\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().status, 200);
    assert!(heads
        .recv_timeout(WAIT)
        .unwrap()
        .starts_with("GET / HTTP/1.1\r\nHost: cam.example.org:8443\r\n"));
}

#[test]
fn each_client_has_its_own_backend_connection() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &[]);
    let mut a = client(&s);
    let mut b = client(&s);
    for _ in 0..3 {
        for c in [&mut a, &mut b] {
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(c.response("GET").unwrap().status, 200);
        }
    }
    assert_eq!(s.backend.connection_count(), 2);
}

#[test]
fn a_backend_that_closes_between_requests_is_reconnected() {
    let backend = Backend::start(|mut conn| {
        // Answers one request per connection, claiming keep-alive, then closes.
        if conn.head().is_some() {
            conn.send(HELLO);
        }
        conn.close();
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    for _ in 0..3 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.response("GET").unwrap().text(), "hello");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.backend.connection_count(), 3);
}

#[test]
fn http10_clients_and_read_until_close_responses() {
    // The head goes back to the test thread: an assert on the backend's
    // thread would fail the test only through what the client then sees.
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let backend = Backend::start(move |mut conn| {
        let head = conn.head().unwrap();
        tx.lock().unwrap().send(head).unwrap();
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it");
        conn.close();
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(b"GET /old HTTP/1.0\r\n\r\n");
    let got = read_to_close(&mut c.stream);
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    );
    let head = rx.recv_timeout(WAIT).unwrap();
    assert!(head.starts_with("GET /old HTTP/1.0\r\n"), "{head}");
    assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
}

#[test]
fn large_response_streams_intact() {
    let body: Vec<u8> = (0..8_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let served = body.clone();
    let backend = Backend::start(move |mut conn| {
        conn.head();
        conn.send(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                served.len()
            )
            .as_bytes(),
        );
        conn.send(&served);
    });
    let s = setup(backend, &[]);
    let mut c = client(&s);
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET").unwrap();
    assert!(r.body == body);
}

#[test]
fn plain_mode_and_ipv6_listeners() {
    let (backend, heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&[
        "--route".into(),
        format!("127.0.0.1:0={}", backend.addr),
        "--route".into(),
        format!("[::1]:0={}", backend.addr),
        "--plain".into(),
    ]);
    assert!(proxy.log().contains("listening on http://"));
    for addr in &proxy.addrs {
        let mut c = ResponseReader::new(plain_connect(*addr));
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(c.response("GET").unwrap().text(), "hello");
        let head = heads.recv_timeout(WAIT).unwrap();
        assert!(head.contains("X-Forwarded-Proto: http\r\n"), "{head}");
    }
    assert!(matches!(proxy.addrs[1], SocketAddr::V6(_)));
}

#[test]
fn query_values_stay_out_of_the_log() {
    let (backend, _h) = Backend::fixed(HELLO);
    let s = setup(backend, &["--log-level", "debug"]);
    let mut c = client(&s);
    c.send(b"GET /cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=hunter2 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\n\r\n");
    assert_eq!(c.response("GET").unwrap().status, 200);
    let line = s.proxy.wait_for_log("CGIProxy");
    assert!(line.contains("cmd=…&usr=…&pwd=…"), "{line}");
    let log = s.proxy.log();
    assert!(
        !log.contains("hunter2") && !log.contains("YWRtaW46"),
        "{log}"
    );
}
