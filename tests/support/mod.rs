//! Test harness: runs the real camtls binary (or the one named by CAMTLS_BIN,
//! under the command prefix CAMTLS_RUNNER, e.g. `qemu-mipsel-static`) on
//! 127.0.0.1, in front of test backends that are plain std threads, and talks
//! to it with OpenSSL as the TLS client. Everything stays on loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

/// Generous: under qemu-user a MIPS binary starts and handshakes slowly.
pub const WAIT: Duration = Duration::from_secs(30);

/// The binary under test and its runner prefix.
pub fn camtls() -> Command {
    let bin =
        std::env::var("CAMTLS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_camtls").to_string());
    let runner = std::env::var("CAMTLS_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut cmd = match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.stdin(Stdio::null());
    cmd
}

/// A directory of its own for each test, removed afterwards.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "camtls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ecdsa,
    Rsa,
}

pub fn new_key(kind: KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        KeyKind::Ecdsa => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
    }
}

/// A certificate for `key`, signed by `issuer` (self-signed when None).
pub fn new_cert(key: &PKey<Private>, cn: &str, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    build_cert(key, cn, false, issuer)
}

/// A CA certificate (`ca`) or a leaf for localhost and 127.0.0.1, with the
/// extensions a verifying client checks, valid for 30 days.
pub fn build_cert(
    key: &PKey<Private>,
    cn: &str,
    ca: bool,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    use openssl::x509::extension::{BasicConstraints, KeyUsage};
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

/// A certificate and key written to files, as a user would have them.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub x509: X509,
}

pub fn write_pair(dir: &TempDir, kind: KeyKind) -> CertFiles {
    let key = new_key(kind);
    let x509 = new_cert(&key, "localhost", None);
    let cert = dir.path(&format!("{kind:?}.crt"));
    let key_path = dir.path(&format!("{kind:?}.key"));
    std::fs::write(&cert, x509.to_pem().unwrap()).unwrap();
    write_private(&key_path, &key.private_key_to_pem_pkcs8().unwrap());
    CertFiles {
        cert,
        key: key_path,
        x509,
    }
}

pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A running camtls; killed when dropped.
pub struct Proxy {
    pub child: Child,
    /// One per --route, in order.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts camtls with `args` and waits until every route listens.
    pub fn start(args: &[String]) -> Proxy {
        let routes = args.iter().filter(|a| *a == "--route").count();
        let mut cmd = camtls();
        cmd.args(args);
        Proxy::start_command(cmd, routes)
    }

    /// Starts `cmd`, which runs camtls with `routes` routes (through a shell
    /// or a wrapper such as prlimit), and waits until every route listens.
    pub fn start_command(mut cmd: Command, routes: usize) -> Proxy {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start camtls");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut addrs = Vec::new();
        let deadline = Instant::now() + WAIT;
        while addrs.len() < routes {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(addr) => addrs.push(addr),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        thread::sleep(Duration::from_millis(100));
                        panic!(
                            "camtls exited with {status}: {}",
                            log.lock().unwrap().join("\n")
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "camtls did not start: {:?}",
                        log.lock().unwrap()
                    );
                }
            }
        }
        Proxy { child, addrs, log }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the log has a line containing `text`.
    pub fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {text:?} in:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "camtls did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in camtls's "listening on SCHEME://ADDR for ..." log line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let addr = rest.split("://").nth(1)?.split(' ').next()?;
    Some(addr.parse().unwrap())
}

/// The usual arguments: one route to `backend`, TLS with `pair`, quiet log.
pub fn args(backend: SocketAddr, pair: Option<&CertFiles>, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["--route".to_string(), format!("127.0.0.1:0={backend}")];
    match pair {
        Some(p) => {
            a.extend(["--cert".into(), p.cert.display().to_string()]);
            a.extend(["--key".into(), p.key.display().to_string()]);
        }
        None => a.push("--plain".into()),
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// camtls at debug level with a new certificate of `kind`, in front of a
/// backend that answers every request with `response`; all three live as
/// long as this does.
pub struct Served {
    _dir: TempDir,
    _backend: Backend,
    pub proxy: Proxy,
}

pub fn serve_fixed(kind: KeyKind, response: &'static [u8]) -> Served {
    let dir = TempDir::new();
    let pair = write_pair(&dir, kind);
    let (backend, _heads) = Backend::fixed(response);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), &["--log-level", "debug"]));
    Served {
        _dir: dir,
        _backend: backend,
        proxy,
    }
}

/// A TLS client that trusts anything: these tests check the proxy, not PKI.
pub fn tls_connect(addr: SocketAddr) -> SslStream<TcpStream> {
    tls_connect_with(addr, |_| {})
}

pub fn tls_connect_with(
    addr: SocketAddr,
    configure: impl FnOnce(&mut openssl::ssl::SslConnectorBuilder),
) -> SslStream<TcpStream> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    configure(&mut b);
    let connector = b.build();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    connector.connect("localhost", tcp).expect("TLS handshake")
}

pub fn plain_connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp
}

/// Reads until the peer closes (or the read timeout passes).
pub fn read_to_close(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// A client-side reader of responses that keeps bytes past each one.
pub struct ResponseReader<S> {
    pub stream: S,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl<S: Read + Write> ResponseReader<S> {
    pub fn new(stream: S) -> Self {
        ResponseReader {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads until `n` bytes are buffered; false if the stream ended first.
    pub fn fill_to(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.fill() {
                return false;
            }
        }
        true
    }

    pub fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n).collect()
    }

    /// One response head (without its body).
    pub fn head(&mut self) -> Option<(u16, String)> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8(self.take(end + 4)).unwrap();
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some((status, head));
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// One whole response to a request with method `method`.
    pub fn response(&mut self, method: &str) -> Option<Reply> {
        let (status, head) = self.head()?;
        let mut reply = Reply {
            status,
            head,
            body: Vec::new(),
        };
        if method == "HEAD" || status < 200 || status == 204 || status == 304 {
            return Some(reply);
        }
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    if !self.fill() {
                        return None;
                    }
                };
                let line = String::from_utf8(self.take(line_end + 2)).unwrap();
                let size =
                    usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
                if size == 0 {
                    // No trailers in these tests.
                    self.fill_to(2);
                    self.take(2);
                    return Some(reply);
                }
                if !self.fill_to(size + 2) {
                    return None;
                }
                let data = self.take(size + 2);
                reply.body.extend_from_slice(&data[..size]);
            }
        } else if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().unwrap();
            if !self.fill_to(len) {
                return None;
            }
            reply.body = self.take(len);
        } else {
            while self.fill() {}
            reply.body = std::mem::take(&mut self.buf);
        }
        Some(reply)
    }

    /// True when the peer has closed and nothing more is buffered.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One backend connection as a test handler sees it.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Conn {
    /// The next request head, or None when the proxy closed the connection.
    pub fn head(&mut self) -> Option<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Some(String::from_utf8(head).unwrap());
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Exactly `n` body bytes.
    pub fn body(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Reads until the bytes read end with `end` (e.g. the last chunk).
    pub fn until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = find(&self.buf, end) {
                return self.buf.drain(..i + end.len()).collect();
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return std::mem::take(&mut self.buf),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A test backend on 127.0.0.1: each connection runs `handler` on a thread
/// of its own. Request heads are recorded in the order they arrive.
pub struct Backend {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl Backend {
    pub fn start(handler: impl Fn(Conn) + Send + Sync + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let handler = Arc::new(handler);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                thread::spawn(move || {
                    stream.set_read_timeout(Some(WAIT)).unwrap();
                    handler(Conn {
                        stream,
                        buf: Vec::new(),
                    })
                });
            }
        });
        Backend { addr, connections }
    }

    /// Answers every request with `response`, keeping the connection open,
    /// and sends each request head to the returned channel.
    pub fn fixed(response: &'static [u8]) -> (Backend, std::sync::mpsc::Receiver<String>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let backend = Backend::start(move |mut conn| {
            while let Some(head) = conn.head() {
                let _ = tx.lock().unwrap().send(head);
                if !conn.send(response) {
                    break;
                }
            }
        });
        (backend, rx)
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A port on 127.0.0.1 that nothing listens on, for a test that must name
/// the port before camtls starts (most pass port 0 and read the log). It is
/// below the kernel's ephemeral range, so no outgoing connection of a suite
/// running beside this one takes it before camtls binds it.
pub fn closed_port() -> SocketAddr {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, span) = (10000u16, ephemeral_low.saturating_sub(10000).max(1));
    for _ in 0..200 {
        let mut random = [0u8; 2];
        openssl::rand::rand_bytes(&mut random).unwrap();
        let port = low + u16::from_ne_bytes(random) % span;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().unwrap();
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

// WebSocket framing, enough for an echo test (RFC 6455).

pub fn websocket_accept(key: &str) -> String {
    let digest =
        openssl::sha::sha1(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    openssl::base64::encode_block(&digest)
}

/// A masked client text frame.
pub fn ws_client_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one frame: (opcode, unmasked payload).
pub fn ws_read_frame(r: &mut impl Read) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).unwrap();
    let masked = h[1] & 0x80 != 0;
    let len = (h[1] & 0x7f) as usize;
    assert!(len < 126);
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).unwrap();
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).unwrap();
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    (h[0] & 0x0f, payload)
}

/// Backend side of a WebSocket echo: answers the upgrade, then echoes text
/// frames (unmasked, as a server sends them) until a close frame.
pub fn websocket_echo(mut conn: Conn) {
    let Some(head) = conn.head() else { return };
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("key forwarded")
        .trim()
        .to_string();
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        websocket_accept(&key)
    );
    conn.send(reply.as_bytes());
    // Bytes that came with the head belong to the tunnel.
    let mut reader =
        std::io::Cursor::new(std::mem::take(&mut conn.buf)).chain(conn.stream.try_clone().unwrap());
    loop {
        let (op, payload) = ws_read_frame(&mut reader);
        if op == 8 {
            let _ = conn.stream.write_all(&[0x88, 0]);
            break;
        }
        let mut f = vec![0x81, payload.len() as u8];
        f.extend_from_slice(&payload);
        if conn.stream.write_all(&f).is_err() {
            break;
        }
    }
}

// Running camtls to its exit, and the openssl command-line tool, for the
// command-line and process tests.

/// What a finished camtls run printed, and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Lines of stderr that contain `text`.
    pub fn stderr_lines_with(&self, text: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(text)).collect()
    }
}

/// Runs `cmd` to its exit (killed after WAIT) and collects its output.
pub fn run_to_exit(mut cmd: Command) -> Ran {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start command");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("wait for command"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("command did not exit within {WAIT:?}: {cmd:?}");
        }
    };
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `camtls ARGS` run to its exit.
pub fn run_camtls(args: &[&str]) -> Ran {
    let mut cmd = camtls();
    cmd.args(args);
    run_to_exit(cmd)
}

/// The `openssl` command-line tool; panics with its stderr if it fails.
pub fn openssl_cli(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when nothing accepts connections on `addr`.
pub fn nothing_listens(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Whether this machine lets a test make a private mount namespace
/// (`unshare --mount`, root only); tests that need one print why they skip.
pub fn can_unshare_mounts() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The path of the binary under test and the runner words before it, for
/// tests that must start it through a shell.
pub fn camtls_command_words() -> Vec<String> {
    let bin =
        std::env::var("CAMTLS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_camtls").to_string());
    let runner = std::env::var("CAMTLS_RUNNER").unwrap_or_default();
    runner
        .split_whitespace()
        .map(String::from)
        .chain(std::iter::once(bin))
        .collect()
}

/// Quotes `word` for sh.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A certificate chain as a CA would issue it: a root, an intermediate and
/// a leaf for localhost and 127.0.0.1, each with the extensions a verifying
/// client checks. Returns (root, intermediate, leaf, leaf key).
pub fn issued_chain() -> (X509, X509, X509, PKey<Private>) {
    let build = build_cert;
    let root_key = new_key(KeyKind::Ecdsa);
    let root = build(&root_key, "camtls test root", true, None);
    let mid_key = new_key(KeyKind::Ecdsa);
    let mid = build(
        &mid_key,
        "camtls test intermediate",
        true,
        Some((&root, &root_key)),
    );
    let leaf_key = new_key(KeyKind::Ecdsa);
    let leaf = build(&leaf_key, "localhost", false, Some((&mid, &mid_key)));
    (root, mid, leaf, leaf_key)
}

/// A TCP connection to `addr` from the loopback address `from` (any of
/// 127.0.0.0/8 is this machine's), so that a test can play several clients.
pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    use nix::libc;
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = addr else {
        panic!("connect_from takes IPv4 addresses");
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned here; the addresses
    // are valid sockaddr_in values that live across each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(from, 0);
        let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*to.ip(), to.port());
        let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }
}

/// A TLS connection from the loopback address `from`.
pub fn tls_connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> SslStream<TcpStream> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.build()
        .connect("localhost", connect_from(from, addr))
        .expect("TLS handshake")
}

/// True when the peer closes `stream` within `within` without sending
/// anything (a connection refused or evicted after accept); false when it
/// is still open then.
pub fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server sent bytes to a connection that sent none"),
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}
