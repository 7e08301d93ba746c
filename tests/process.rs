//! camtls as a process: SIGHUP reloads the certificate without dropping
//! connections, SIGTERM and SIGINT stop gracefully within --shutdown-grace,
//! --daemon with --pidfile, --syslog, and --user. The real binary, real TLS
//! clients, loopback only. Tests that need root (switching users, a private
//! mount namespace that puts a socket of the test's at /dev/log) print why
//! they skip without it.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use openssl::x509::X509;
use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Writes a new certificate and key to `cert` and `key`, as a renewal would.
fn install_pair(cert: &Path, key: &Path, kind: KeyKind) -> X509 {
    let private = new_key(kind);
    let x509 = new_cert(&private, "localhost", None);
    std::fs::write(cert, x509.to_pem().unwrap()).unwrap();
    write_private(key, &private.private_key_to_pem_pkcs8().unwrap());
    x509
}

/// The usual arguments, listening on `listen`.
fn routed(
    listen: SocketAddr,
    backend: SocketAddr,
    pair: &CertFiles,
    extra: &[&str],
) -> Vec<String> {
    let mut a = args(backend, Some(pair), extra);
    a[1] = format!("{listen}={backend}");
    a
}

fn tls_args(listen: &str, backend: SocketAddr, cert: &Path, key: &Path) -> Vec<String> {
    [
        "--route",
        &format!("{listen}={backend}"),
        "--cert",
        &s(cert),
        "--key",
        &s(key),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// A GET on an open connection; true when the backend's answer came back.
fn get_on<S: Read + Write>(client: &mut ResponseReader<S>) -> bool {
    client.send(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n");
    client.fill_to(HELLO.len()) && client.take(HELLO.len()) == HELLO
}

/// The fingerprint a new client sees, and whether a GET works through it.
fn new_connection_fingerprint(addr: SocketAddr) -> String {
    let tls = tls_connect(addr);
    let seen = fingerprint(&tls.ssl().peer_certificate().unwrap());
    let mut client = ResponseReader::new(tls);
    assert!(get_on(&mut client));
    seen
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_connections() {
    let dir = TempDir::new();
    let (cert, key) = (dir.path("server.crt"), dir.path("server.key"));
    let first = install_pair(&cert, &key, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&tls_args("127.0.0.1:0", backend.addr, &cert, &key));
    let addr = proxy.addr();

    let before = tls_connect(addr);
    assert_eq!(
        fingerprint(&before.ssl().peer_certificate().unwrap()),
        fingerprint(&first)
    );
    let mut before = ResponseReader::new(before);
    assert!(get_on(&mut before));

    // A renewal: new files on disk, then SIGHUP.
    let second = install_pair(&cert, &key, KeyKind::Rsa);
    proxy.signal(Signal::SIGHUP);
    let line = proxy.wait_for_log("SIGHUP: certificate reloaded");
    assert!(
        line.ends_with(&format!(
            "SIGHUP: certificate reloaded, SHA-256 fingerprint {}",
            fingerprint(&second)
        )),
        "{line}"
    );
    // The keep-alive connection from before goes on, with its certificate.
    assert!(get_on(&mut before), "the open connection was dropped");
    assert_eq!(
        fingerprint(&before.stream.ssl().peer_certificate().unwrap()),
        fingerprint(&first)
    );
    assert_eq!(new_connection_fingerprint(addr), fingerprint(&second));

    // A key that does not match: logged, and the running pair stays.
    let stray = new_key(KeyKind::Ecdsa);
    write_private(&key, &stray.private_key_to_pem_pkcs8().unwrap());
    proxy.signal(Signal::SIGHUP);
    let line = proxy.wait_for_log("does not match");
    assert!(line.starts_with("ERROR"), "{line}");
    assert!(
        line.ends_with(&format!(
            "SIGHUP: key {} does not match certificate {}; still serving the previous certificate",
            s(&key),
            s(&cert)
        )),
        "{line}"
    );
    assert_eq!(new_connection_fingerprint(addr), fingerprint(&second));

    // A certificate file that is gone (a renewal half done): the same.
    std::fs::remove_file(&cert).unwrap();
    proxy.signal(Signal::SIGHUP);
    let line = proxy.wait_for_log("cannot read certificate");
    assert!(
        line.ends_with(&format!(
            "SIGHUP: cannot read certificate {}: No such file or directory (os error 2); still serving the previous certificate",
            s(&cert)
        )),
        "{line}"
    );
    assert_eq!(new_connection_fingerprint(addr), fingerprint(&second));

    // Once the files are whole again, the next SIGHUP takes them.
    let third = install_pair(&cert, &key, KeyKind::Ecdsa);
    proxy.signal(Signal::SIGHUP);
    proxy.wait_for_log(&format!(
        "SIGHUP: certificate reloaded, SHA-256 fingerprint {}",
        fingerprint(&third)
    ));
    assert_eq!(new_connection_fingerprint(addr), fingerprint(&third));
    assert!(get_on(&mut before), "the first connection still works");
}

/// A backend whose `/slow` answer sends half its body, then waits for the
/// test to say `go` before the rest. `/fast` answers at once.
fn slow_backend() -> (Backend, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let go_rx = Mutex::new(go_rx);
    let backend = Backend::start(move |mut conn| {
        while let Some(head) = conn.head() {
            if head.starts_with("GET /slow ") {
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
                let _ = started_tx.lock().unwrap().send(());
                if go_rx.lock().unwrap().recv_timeout(WAIT).is_err() {
                    return;
                }
                conn.send(b"world");
            } else {
                conn.send(HELLO);
            }
        }
    });
    (backend, started_rx, go_tx)
}

fn graceful_stop(signal: Signal, name: &str) {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, started, go) = slow_backend();
    let mut proxy = Proxy::start(&args(
        backend.addr,
        Some(&pair),
        &["--shutdown-grace", "20"],
    ));
    let addr = proxy.addr();

    let mut idle = ResponseReader::new(tls_connect(addr));
    assert!(get_on(&mut idle));
    let mut slow = ResponseReader::new(tls_connect(addr));
    slow.send(b"GET /slow HTTP/1.1\r\nHost: cam\r\n\r\n");
    started.recv_timeout(WAIT).unwrap();
    let (status, _) = slow.head().unwrap();
    assert_eq!(status, 200);

    let signalled = Instant::now();
    proxy.signal(signal);
    let line = proxy.wait_for_log("no new connections");
    assert!(
        line.ends_with(&format!("{name}: no new connections; 2 open")),
        "{line}"
    );
    // The idle keep-alive connection is closed at once.
    assert!(idle.is_closed(), "the idle connection was left open");
    let idle_closed = signalled.elapsed();
    assert!(idle_closed < Duration::from_secs(2), "{idle_closed:?}");
    // New connections are refused.
    let refused_by = Instant::now() + Duration::from_secs(2);
    while !nothing_listens(addr) {
        assert!(Instant::now() < refused_by, "still accepting after {name}");
        thread::sleep(Duration::from_millis(20));
    }
    // The open exchange finishes, then the process exits 0.
    assert!(
        proxy.child.try_wait().unwrap().is_none(),
        "exited too early"
    );
    go.send(()).unwrap();
    assert!(slow.fill_to(10));
    assert_eq!(slow.take(10), b"helloworld");
    assert!(
        slow.is_closed(),
        "the connection is closed after the exchange"
    );
    assert_eq!(proxy.wait_exit(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(15));
    let log = proxy.log();
    assert!(log.ends_with("stopped"), "{log}");
    assert!(!log.contains("still open after"), "{log}");
}

#[test]
fn sigterm_lets_open_exchanges_finish_and_exits_0() {
    graceful_stop(Signal::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_lets_open_exchanges_finish_and_exits_0() {
    graceful_stop(Signal::SIGINT, "SIGINT");
}

#[test]
fn shutdown_grace_bounds_the_wait() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, started, _go) = slow_backend();
    let mut proxy = Proxy::start(&args(backend.addr, Some(&pair), &["--shutdown-grace", "1"]));
    let mut slow = ResponseReader::new(tls_connect(proxy.addr()));
    slow.send(b"GET /slow HTTP/1.1\r\nHost: cam\r\n\r\n");
    started.recv_timeout(WAIT).unwrap();
    assert_eq!(slow.head().unwrap().0, 200);
    let signalled = Instant::now();
    proxy.signal(Signal::SIGTERM);
    assert_eq!(proxy.wait_exit(), Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    proxy.wait_for_log("1 connections still open after 1s; closing them");
    // The cut-off client sees the connection end before the body does.
    assert!(!slow.fill_to(10));
}

/// Reads the pid file, waiting a little for it to appear.
fn read_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no pid file {}", s(path));
        thread::sleep(Duration::from_millis(10));
    }
}

fn process_state(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .map(|s| s.trim().to_string())
}

/// Waits until `pid` has ended (gone, or a zombie of an init that does not
/// reap).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + WAIT;
    while process_state(pid).is_some_and(|s| !s.starts_with('Z')) {
        assert!(Instant::now() < deadline, "process {pid} did not end");
        thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: i32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

fn field_of_status(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn daemon_detaches_writes_the_pid_file_and_removes_it_on_sigterm() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let listen = closed_port();
    let pid_file = dir.path("camtls.pid");
    let mut a = routed(listen, backend.addr, &pair, &["--daemon", "--pidfile"]);
    a.push(s(&pid_file));

    let started = Instant::now();
    let mut cmd = camtls();
    cmd.args(&a);
    let ran = run_to_exit(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(ran.stdout.is_empty(), "{ran:?}");

    let pid = read_pid_file(&pid_file);
    // Detached: a session of its own, not a child of the command.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    assert_eq!(fields[3], pid.to_string(), "session id: {stat}");
    assert_ne!(fields[1], std::process::id().to_string(), "{stat}");
    // It serves.
    let tls = tls_connect(listen);
    let mut client = ResponseReader::new(tls);
    assert!(get_on(&mut client));
    drop(client);

    kill(pid, Signal::SIGTERM);
    wait_gone(pid);
    assert!(!pid_file.exists(), "pid file left behind");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !nothing_listens(listen) {
        assert!(Instant::now() < deadline, "{listen} still listens");
        thread::sleep(Duration::from_millis(50));
    }
}

/// An init script reads the pid file as soon as `camtls --daemon` returns.
#[test]
fn daemon_pid_file_exists_when_the_command_returns() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let pid_file = dir.path("camtls.pid");
    for _ in 0..10 {
        let listen = closed_port();
        let backend: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut a = routed(listen, backend, &pair, &["--daemon", "--pidfile"]);
        a.push(s(&pid_file));
        // Only the exit status: no pipes that the daemon holds a moment.
        let status = camtls()
            .args(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let text = std::fs::read_to_string(&pid_file);
        let pid = read_pid_file(&pid_file);
        kill(pid, Signal::SIGTERM);
        wait_gone(pid);
        assert!(
            text.is_ok(),
            "no pid file when camtls --daemon returned: {text:?}"
        );
    }
}

/// Paths given relative to where camtls was started keep meaning that
/// place after --daemon has changed directory to /.
#[test]
fn daemon_start_errors_after_detaching_reach_the_terminal() {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let backend: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let listen = closed_port();
    let mut a = routed(listen, backend, &pair, &["--daemon", "--pidfile"]);
    let unwritable = dir.path("no-such-dir").join("camtls.pid");
    a.push(s(&unwritable));
    let out = camtls().args(&a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write pid file") && err.contains("no-such-dir"),
        "{err}"
    );
    // Nothing was left running: no process has this test's pid-file path on
    // its command line. (A check of the port could meet another test's
    // listener that got the same number since.)
    let path = unwritable.as_os_str().as_encoded_bytes().to_vec();
    let lingering = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
                && std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|cmdline| find(&cmdline, &path).is_some())
        })
    };
    let deadline = Instant::now() + WAIT;
    while lingering() {
        assert!(
            Instant::now() < deadline,
            "the detached child is still running"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn daemon_keeps_relative_paths() {
    let dir = TempDir::new();
    let first = install_pair(
        &dir.path("server.crt"),
        &dir.path("server.key"),
        KeyKind::Ecdsa,
    );
    let listen = closed_port();
    let status = camtls()
        .current_dir(&dir.0)
        .args(["--route", &format!("{listen}=127.0.0.1:9")])
        .args(["--cert", "server.crt", "--key", "server.key"])
        .args(["--daemon", "--pidfile", "camtls.pid"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStreamProbe::fingerprint(listen).as_deref() != Some(&fingerprint(&first)) {
        assert!(Instant::now() < deadline, "the daemon does not serve");
        thread::sleep(Duration::from_millis(20));
    }
    let stray = Path::new("/camtls.pid");
    let in_root = stray.exists();
    let pid = if in_root {
        let pid = read_pid_file(stray);
        std::fs::remove_file(stray).ok();
        pid
    } else {
        read_pid_file(&dir.path("camtls.pid"))
    };
    let second = install_pair(
        &dir.path("server.crt"),
        &dir.path("server.key"),
        KeyKind::Rsa,
    );
    kill(pid, Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut reloaded = false;
    while Instant::now() < deadline && !reloaded {
        reloaded = TcpStreamProbe::fingerprint(listen).as_deref() == Some(&fingerprint(&second));
        thread::sleep(Duration::from_millis(50));
    }
    kill(pid, Signal::SIGTERM);
    wait_gone(pid);
    assert!(
        !in_root && reloaded,
        "pid file written as /camtls.pid: {in_root}; SIGHUP loaded the renewed files: {reloaded}"
    );
}

/// The certificate a new TLS client is shown, if the handshake works.
struct TcpStreamProbe;

impl TcpStreamProbe {
    fn fingerprint(addr: SocketAddr) -> Option<String> {
        let tcp = std::net::TcpStream::connect(addr).ok()?;
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let mut b =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
        b.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let tls = b.build().connect("localhost", tcp).ok()?;
        Some(fingerprint(&tls.ssl().peer_certificate()?))
    }
}

/// A private mount namespace in which `dev` (a directory of the test's) is
/// /dev: null, urandom and random are the real ones (OpenSSL seeds from them
/// on a kernel without getrandom), /dev/log is whatever the test put there.
fn in_private_dev(dev: &Path, camtls_args: &[String]) -> Command {
    let mut binds = Vec::new();
    for name in ["null", "urandom", "random"] {
        let node = dev.join(name);
        std::fs::write(&node, b"").unwrap();
        binds.push(format!("mount --bind /dev/{name} {}", sh_quote(&s(&node))));
    }
    let words: Vec<String> = camtls_command_words()
        .iter()
        .chain(camtls_args)
        .map(|w| sh_quote(w))
        .collect();
    let script = format!(
        "{binds} && mount --bind {dev} /dev && exec {command}",
        binds = binds.join(" && "),
        dev = sh_quote(&s(dev)),
        command = words.join(" "),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null());
    cmd
}

/// Messages a syslog socket of the test's receives.
struct SyslogSink {
    messages: Arc<Mutex<Vec<String>>>,
}

impl SyslogSink {
    fn bind(path: &Path) -> SyslogSink {
        let socket = UnixDatagram::bind(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push(text);
            }
        });
        SyslogSink { messages }
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(m) = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.contains(text))
            {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no syslog message with {text:?} in {:?}",
                self.messages.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn address_in(message: &str) -> SocketAddr {
    message
        .split("://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn syslog_and_daemon_log_to_dev_log() {
    if !can_unshare_mounts() {
        println!("skipped: a socket at /dev/log needs root and unshare --mount");
        return;
    }
    // camtls always logs to /dev/log; in a private mount namespace that
    // path is a datagram socket of this test's.
    let dir = TempDir::new();
    let dev = dir.path("dev");
    std::fs::create_dir(&dev).unwrap();
    let sink = SyslogSink::bind(&dev.join("log"));
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (backend, _heads) = Backend::fixed(HELLO);

    let child = in_private_dev(&dev, &args(backend.addr, Some(&pair), &["--syslog"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let listening = sink.wait_for("listening on");
    // Facility daemon (3): info is <30>, a warning <28>.
    assert_eq!(
        listening,
        format!(
            "<30>camtls[{pid}]: listening on https://{} for http://{}",
            address_in(&listening),
            backend.addr
        )
    );
    assert_eq!(
        sink.wait_for("fingerprint"),
        format!(
            "<30>camtls[{pid}]: certificate {} SHA-256 fingerprint {}",
            s(&pair.cert),
            fingerprint(&pair.x509)
        )
    );
    assert_eq!(
        sink.wait_for("readable by group"),
        format!(
            "<28>camtls[{pid}]: key file {} is readable by group or others (mode 640); chmod 600 it",
            s(&pair.key)
        )
    );
    let mut client = ResponseReader::new(tls_connect(address_in(&listening)));
    assert!(get_on(&mut client));
    drop(client);
    kill(pid as i32, Signal::SIGTERM);
    assert_eq!(
        sink.wait_for("stopped"),
        format!("<30>camtls[{pid}]: stopped")
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "everything went to syslog"
    );

    // --daemon logs there too; the pid in the messages is the pid file's.
    let pid_file = dir.path("camtls.pid");
    let mut a = args(backend.addr, Some(&pair), &["--daemon", "--pidfile"]);
    a.push(s(&pid_file));
    let before = sink.messages.lock().unwrap().len();
    let ran = run_to_exit(in_private_dev(&dev, &a));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stderr, "", "{ran:?}");
    let pid = read_pid_file(&pid_file);
    let deadline = Instant::now() + WAIT;
    let listening = loop {
        let found = sink.messages.lock().unwrap()[before..]
            .iter()
            .find(|m| m.contains("listening on"))
            .cloned();
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon logged no listening line"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(
        listening.starts_with(&format!("<30>camtls[{pid}]: listening on https://")),
        "{listening}"
    );
    let mut client = ResponseReader::new(tls_connect(address_in(&listening)));
    assert!(get_on(&mut client));
    drop(client);
    kill(pid, Signal::SIGTERM);
    wait_gone(pid);
    assert!(!pid_file.exists());
}

#[test]
fn syslog_without_dev_log_falls_back_to_stderr() {
    if !can_unshare_mounts() {
        println!("skipped: hiding /dev/log needs root and unshare --mount");
        return;
    }
    // A /dev with no log socket: messages go to stderr, and camtls serves.
    let dir = TempDir::new();
    let dev = dir.path("dev");
    std::fs::create_dir(&dev).unwrap();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let mut child = in_private_dev(&dev, &args(backend.addr, Some(&pair), &["--syslog"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "camtls ended without serving");
    }
    assert!(
        line.starts_with(&format!("camtls[{pid}]: listening on https://")),
        "{line}"
    );
    let mut client = ResponseReader::new(tls_connect(address_in(line.trim())));
    assert!(get_on(&mut client));
    kill(pid as i32, Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A free port below 1024, which only root may bind.
fn privileged_port() -> Option<u16> {
    (900..1024).find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

#[test]
fn user_switch_after_binding_a_privileged_port() {
    if !is_root() {
        println!("skipped: --user needs camtls to start as root");
        return;
    }
    let Some(port) = privileged_port() else {
        println!("skipped: no free port below 1024 on 127.0.0.1");
        return;
    };
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let a = routed(listen, backend.addr, &pair, &["--user", "nobody"]);
    let proxy = Proxy::start(&a);
    assert_eq!(proxy.addr().port(), port);
    proxy.wait_for_log("running as user nobody");
    let pid = proxy.child.id() as i32;
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let uid = nobody.uid.to_string();
    let gid = nobody.gid.to_string();
    assert_eq!(field_of_status(pid, "Uid"), [uid.as_str(); 4].join(" "));
    assert_eq!(field_of_status(pid, "Gid"), [gid.as_str(); 4].join(" "));
    assert_eq!(field_of_status(pid, "Groups"), gid);
    let mut client = ResponseReader::new(tls_connect(proxy.addr()));
    assert!(get_on(&mut client));

    // The key (root's, mode 600) cannot be read again as nobody: a reload
    // says so and the running certificate stays.
    proxy.signal(Signal::SIGHUP);
    let line = proxy.wait_for_log("SIGHUP: cannot read key");
    assert!(
        line.ends_with(&format!(
            "SIGHUP: cannot read key {}: Permission denied (os error 13); still serving the previous certificate",
            s(&pair.key)
        )),
        "{line}"
    );
    assert_eq!(
        new_connection_fingerprint(proxy.addr()),
        fingerprint(&pair.x509)
    );
    assert!(get_on(&mut client));
}
