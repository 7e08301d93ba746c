//! The end-to-end suite that every build must pass, the router builds too:
//! `CAMTLS_BIN=dist/camtls-…-mipsel-unknown-linux-musl
//! CAMTLS_RUNNER=qemu-mipsel-static cargo test --test e2e`. The proxy runs
//! (emulated or not) on 127.0.0.1; the client and backends run natively.

mod support;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use support::*;

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

fn get_over_tls(kind: KeyKind) {
    let dir = TempDir::new();
    let pair = write_pair(&dir, kind);
    let (backend, heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let line = proxy.wait_for_log("fingerprint");
    assert!(line.contains(&fingerprint(&pair.x509)), "{line}");

    let tls = tls_connect(proxy.addr());
    let cipher = tls.ssl().current_cipher().unwrap().name().to_string();
    let version = tls.ssl().version_str().to_string();
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");
    let peer = tls.ssl().peer_certificate().unwrap();
    assert_eq!(fingerprint(&peer), fingerprint(&pair.x509));

    let mut client = ResponseReader::new(tls);
    client.send(b"GET /snapshot.cgi?user=admin&pwd=secret HTTP/1.1\r\nHost: cam.example:8443\r\nUser-Agent: e2e\r\n\r\n");
    assert!(
        client.fill_to(HELLO.len()),
        "no full response (cipher {cipher})"
    );
    assert_eq!(client.take(HELLO.len()), HELLO);

    let head = heads.recv_timeout(WAIT).unwrap();
    assert_eq!(
        head,
        format!(
            "GET /snapshot.cgi?user=admin&pwd=secret HTTP/1.1\r\nHost: {}\r\nUser-Agent: e2e\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: cam.example:8443\r\n\r\n",
            backend.addr
        )
    );
    // A second request on the same connection: keep-alive on both sides.
    client.send(b"GET /again HTTP/1.1\r\nHost: cam.example:8443\r\n\r\n");
    assert!(client.fill_to(HELLO.len()));
    assert_eq!(client.take(HELLO.len()), HELLO);
    assert!(heads
        .recv_timeout(WAIT)
        .unwrap()
        .starts_with("GET /again HTTP/1.1\r\n"));
    assert_eq!(backend.connection_count(), 1);
}

#[test]
fn ecdsa_certificate_handshake_and_get() {
    get_over_tls(KeyKind::Ecdsa);
}

#[test]
fn rsa_certificate_handshake_and_get() {
    get_over_tls(KeyKind::Rsa);
}

#[test]
fn chunked_response_passes_through_as_sent() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let backend = Backend::start(|mut conn| {
        while conn.head().is_some() {
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for piece in ["5\r\nfirst\r\n", "6;ext=1\r\nsecond\r\n", "0\r\n\r\n"] {
                std::thread::sleep(Duration::from_millis(20));
                conn.send(piece.as_bytes());
            }
        }
    });
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let mut client = ResponseReader::new(tls_connect(proxy.addr()));
    let expected: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n6;ext=1\r\nsecond\r\n0\r\n\r\n";
    for _ in 0..2 {
        client.send(b"GET /log HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(client.fill_to(expected.len()));
        assert_eq!(
            String::from_utf8(client.take(expected.len())).unwrap(),
            String::from_utf8_lossy(expected)
        );
    }
}

#[test]
fn mjpeg_frames_arrive_one_by_one() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    // The camera sends the next frame only after the client has seen the
    // previous one: a proxy that waits for a buffer to fill stalls here.
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let seen_rx = std::sync::Mutex::new(seen_rx);
    let backend = Backend::start(move |mut conn| {
        conn.head().unwrap();
        conn.send(
            b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n",
        );
        for n in 0..3u8 {
            let jpeg = [0xFF, 0xD8, n, 0xFF, 0xD9];
            let part = format!(
                "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            );
            conn.send(part.as_bytes());
            conn.send(&jpeg);
            conn.send(b"\r\n");
            if seen_rx.lock().unwrap().recv_timeout(WAIT).is_err() {
                return;
            }
        }
        conn.close();
    });
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let mut client = ResponseReader::new(tls_connect(proxy.addr()));
    client.send(b"GET /video.mjpg HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, head) = client.head().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nConnection: close\r\n\r\n"
    );
    for n in 0..3u8 {
        let part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 5\r\n\r\n";
        let frame_len = part.len() + 5 + 2;
        assert!(client.fill_to(frame_len), "frame {n} did not arrive");
        let frame = client.take(frame_len);
        assert_eq!(
            &frame[part.len()..],
            &[0xFF, 0xD8, n, 0xFF, 0xD9, b'\r', b'\n']
        );
        seen_tx.send(()).unwrap();
    }
    // Read-until-close: the camera closing ends the response and the connection.
    assert!(client.is_closed());
}

#[test]
fn websocket_echo_through_the_tunnel() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let backend = Backend::start(websocket_echo);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let mut tls = tls_connect(proxy.addr());
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let mut upgrade = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    // The first frame rides in the same write as the upgrade request.
    upgrade.extend(ws_client_frame(b"early"));
    tls.write_all(&upgrade).unwrap();
    let mut reader = ResponseReader::new(tls);
    let (status, head) = reader.head().unwrap();
    assert_eq!(status, 101, "{head}");
    assert!(
        head.contains(&format!(
            "Sec-WebSocket-Accept: {}\r\n",
            websocket_accept(key)
        )),
        "{head}"
    );
    assert!(
        head.contains("Connection: upgrade\r\nUpgrade: websocket\r\n"),
        "{head}"
    );
    let mut tls = reader.stream;
    assert_eq!(ws_read_frame(&mut tls), (1, b"early".to_vec()));
    for text in ["hello camera", "second message"] {
        tls.write_all(&ws_client_frame(text.as_bytes())).unwrap();
        assert_eq!(ws_read_frame(&mut tls), (1, text.as_bytes().to_vec()));
    }
    tls.write_all(&[0x88, 0x80, 0, 0, 0, 0]).unwrap();
    assert_eq!(ws_read_frame(&mut tls).0, 8);
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn redirect_to_the_camera_is_rewritten() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Rsa);
    let backend = Backend::start(|mut conn| {
        let port = conn.stream.local_addr().unwrap().port();
        while conn.head().is_some() {
            let r = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/login.htm?next=%2F\r\nContent-Length: 0\r\n\r\n"
            );
            conn.send(r.as_bytes());
        }
    });
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &[]));
    let mut client = ResponseReader::new(tls_connect(proxy.addr()));
    let host = format!("127.0.0.1:{}", proxy.addr().port());
    client.send(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    let reply = client.response("GET").unwrap();
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location").unwrap(),
        format!("https://{host}/login.htm?next=%2F")
    );
}
