//! The camera zoo: a test backend that answers the way firmware web servers
//! do (old Foscam and Netwave, GoAhead, Boa, thttpd, busybox httpd CGIs,
//! Hikvision and Dahua, mjpg-streamer, motion), one quirk per path, and what
//! each must look like at the client. Also the response Transfer-Encoding
//! rules of RFC 9112 section 6.3.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// A request path and its response, exactly as the device sends it.
fn canned(path: &str) -> Option<Vec<u8>> {
    let text: String = match path {
        // Bare LF line ends (thttpd CGIs, busybox httpd scripts).
        "/lf" => "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\nhello".into(),
        // No reason phrase, and an empty one (GoAhead, Boa).
        "/no-reason" => "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok".into(),
        "/empty-reason" => {
            "HTTP/1.0 401 \r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nauth".into()
        }
        // The same Content-Length twice; two different ones.
        "/same-length" => {
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello".into()
        }
        "/two-lengths" => {
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".into()
        }
        // Forty cookies (Hikvision and Dahua set many).
        "/cookies" => {
            let mut t = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..40 {
                t += &format!("Set-Cookie: c{i}=v{i}; Path=/; HttpOnly\r\n");
            }
            t + "Content-Length: 2\r\n\r\nok"
        }
        // Interim answers before the final one.
        "/interim" => "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(),
        // A content coding as the transfer coding, ending at close.
        "/te-gzip" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\nnot chunks".into(),
        "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".into(),
        // Both framings: TE wins, the connection is not used again.
        "/te-and-length" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into(),
        _ => return None,
    };
    Some(text.into_bytes())
}

struct Zoo {
    backend: Backend,
    /// Lets /mjpeg send its next frame.
    next_frame: Sender<()>,
}

fn path_of(head: &str) -> String {
    head.split(' ').nth(1).unwrap_or("").to_string()
}

fn zoo() -> Zoo {
    let (next_frame, frames) = channel::<()>();
    let frames: Arc<Mutex<Receiver<()>>> = Arc::new(Mutex::new(frames));
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    let backend = Backend::start(move |mut conn| {
        let id = CONNECTIONS.fetch_add(1, Ordering::SeqCst);
        let nonce = format!("n{id}x{}", std::process::id());
        while let Some(head) = conn.head() {
            let path = path_of(&head);
            if let Some(response) = canned(&path) {
                if !conn.send(&response) {
                    return;
                }
                // Its body ends at close.
                if path == "/te-gzip" {
                    return;
                }
                continue;
            }
            match path.as_str() {
                // HTTP/1.0 with keep-alive: the next request comes on the
                // same connection.
                "/keep-alive-10" | "/keep-alive-10b" => {
                    let body = if path.ends_with('b') { "two" } else { "one" };
                    let reply = format!(
                        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n{body}"
                    );
                    conn.send(reply.as_bytes());
                }
                // A slow CPU writing its head a byte at a time.
                "/trickle" => {
                    for b in b"HTTP/1.1 200 OK\r\nServer: slow\r\nContent-Length: 4\r\n\r\n" {
                        if !conn.send(&[*b]) {
                            return;
                        }
                        thread::sleep(Duration::from_millis(20));
                    }
                    conn.send(b"done");
                }
                // mjpg-streamer and old Foscams: HTTP/1.0, the stream ends at
                // close, part headers end in bare LF.
                "/mjpeg" => {
                    conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\n\r\n");
                    for n in 1..=3 {
                        let frame = format!(
                            "--frame\nContent-Type: image/jpeg\nContent-Length: 6\n\nJPEG-{n}\n"
                        );
                        if !conn.send(frame.as_bytes()) {
                            return;
                        }
                        if frames.lock().unwrap().recv().is_err() {
                            return;
                        }
                    }
                    return;
                }
                // A body shorter than its Content-Length (a camera reboots).
                "/short" => {
                    conn.send(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly twenty bytes...",
                    );
                    thread::sleep(Duration::from_millis(200));
                    return;
                }
                // Digest with the nonce bound to this TCP connection.
                "/digest" => {
                    let expected = format!("nonce=\"{nonce}\"");
                    let reply = if head.contains(&expected) {
                        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nwelcome".to_string()
                    } else {
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"{nonce}\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n"
                        )
                    };
                    conn.send(reply.as_bytes());
                }
                _ => {
                    conn.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    Zoo {
        backend,
        next_frame,
    }
}

struct Setup {
    _dir: TempDir,
    zoo: Zoo,
    proxy: Proxy,
}

fn setup() -> Setup {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let zoo = zoo();
    let proxy = Proxy::start(&args(zoo.backend.addr, Some(&pair), &[]));
    Setup {
        _dir: dir,
        zoo,
        proxy,
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: cam.example:8443\r\n\r\n")
}

fn client(s: &Setup) -> ResponseReader<openssl::ssl::SslStream<std::net::TcpStream>> {
    ResponseReader::new(tls_connect(s.proxy.addr()))
}

#[test]
fn bare_lf_heads_and_missing_reason_phrases_pass() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/lf").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{r:?}");
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));

    c.send(get("/no-reason").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert!(r.head.starts_with("HTTP/1.1 200 \r\n"), "{:?}", r.head);

    c.send(get("/empty-reason").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (401, "auth"), "{r:?}");
    // Still the same client connection.
    c.send(get("/lf").as_bytes());
    assert_eq!(c.response("GET").unwrap().status, 200);
}

#[test]
fn identical_content_lengths_pass_and_different_ones_are_502() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/same-length").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{r:?}");
    c.send(get("/two-lengths").as_bytes());
    assert_eq!(c.response("GET").unwrap().status, 502);
}

#[test]
fn http10_keep_alive_with_a_length_keeps_both_connections() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/keep-alive-10").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "one"), "{r:?}");
    c.send(get("/keep-alive-10b").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "two"), "{r:?}");
    assert_eq!(s.zoo.backend.connection_count(), 1);
}

#[test]
fn a_head_trickled_a_byte_at_a_time_arrives_whole() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/trickle").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "done"), "{r:?}");
    assert_eq!(r.header("server").as_deref(), Some("slow"));
}

#[test]
fn forty_cookies_arrive_in_order() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/cookies").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 200);
    let cookies: Vec<&str> = r
        .head
        .lines()
        .filter_map(|l| l.strip_prefix("Set-Cookie: "))
        .collect();
    let want: Vec<String> = (0..40)
        .map(|i| format!("c{i}=v{i}; Path=/; HttpOnly"))
        .collect();
    assert_eq!(cookies, want);
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/interim").as_bytes());
    let (status, _) = c.head().unwrap();
    assert_eq!(status, 102);
    let (status, head) = c.head().unwrap();
    assert_eq!(status, 103);
    assert!(head.contains("Link: </app.css>; rel=preload\r\n"), "{head}");
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
}

#[test]
fn mjpeg_over_http10_arrives_frame_by_frame() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/mjpeg").as_bytes());
    let (status, head) = c.head().unwrap();
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: multipart/x-mixed-replace;boundary=frame\r\n"),
        "{head}"
    );
    for n in 1..=3 {
        // Each frame arrives before the camera has sent the next.
        let frame = format!("--frame\nContent-Type: image/jpeg\nContent-Length: 6\n\nJPEG-{n}\n");
        assert!(c.fill_to(frame.len()), "frame {n} did not arrive");
        assert_eq!(String::from_utf8(c.take(frame.len())).unwrap(), frame);
        s.zoo.next_frame.send(()).unwrap();
    }
    assert!(c.is_closed(), "the stream ends when the camera closes");
}

#[test]
fn a_body_shorter_than_its_length_closes_the_client() {
    let s = setup();
    let mut c = client(&s);
    let started = Instant::now();
    c.send(get("/short").as_bytes());
    let (status, _) = c.head().unwrap();
    assert_eq!(status, 200);
    assert!(c.fill_to(20));
    assert_eq!(c.take(20), b"only twenty bytes...".to_vec());
    assert!(c.is_closed(), "left open after a body cut short");
    // Closed when the camera closed, not at the 60 s backend timeout. Under
    // qemu-user a MIPS build takes seconds for what takes milliseconds here.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn digest_nonce_bound_to_the_backend_connection() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/digest").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.header("www-authenticate").unwrap();
    let nonce = challenge.split("nonce=\"").nth(1).unwrap();
    let nonce = &nonce[..nonce.find('"').unwrap()];
    c.send(
        format!(
            "GET /digest HTTP/1.1\r\nHost: cam.example:8443\r\nAuthorization: Digest username=\"admin\", realm=\"cam\", nonce=\"{nonce}\", uri=\"/digest\", response=\"0\"\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.response("GET").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "welcome"), "{r:?}");
    assert_eq!(s.zoo.backend.connection_count(), 1);
}

/// Everything a client connection receives until the proxy closes it.
fn exchange(s: &Setup, request: &str) -> String {
    let mut tls = tls_connect(s.proxy.addr());
    std::io::Write::write_all(&mut tls, request.as_bytes()).unwrap();
    String::from_utf8_lossy(&read_to_close(&mut tls)).into_owned()
}

#[test]
fn transfer_coding_other_than_chunked_is_forwarded_and_ends_at_close() {
    let s = setup();
    let got = exchange(&s, &get("/te-gzip"));
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("\r\nTransfer-Encoding: gzip"), "{head}");
    assert!(!head.contains("chunked"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    // Taken for chunks, this body would end after "0\r\n\r\n".
    assert_eq!(body, "0\r\n\r\nnot chunks");
}

#[test]
fn chunked_reaches_an_http10_client_without_chunks() {
    let s = setup();
    let got = exchange(&s, "GET /chunked HTTP/1.0\r\n\r\n");
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    assert_eq!(head, "HTTP/1.1 200 OK", "no Transfer-Encoding, no length");
    assert_eq!(body, "hello world");
    // An HTTP/1.1 client gets the chunks as they were.
    let mut c = client(&s);
    c.send(get("/chunked").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(r.text(), "hello world");
}

#[test]
fn transfer_encoding_with_content_length_is_framed_by_te_and_not_reused() {
    let s = setup();
    let mut c = client(&s);
    c.send(get("/te-and-length").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!(r.text(), "hello");
    assert_eq!(r.header("content-length"), None, "{r:?}");
    c.send(get("/lf").as_bytes());
    let r = c.response("GET").unwrap();
    assert_eq!(r.text(), "hello");
    // The second request went on a new backend connection.
    assert_eq!(s.zoo.backend.connection_count(), 2);
}
