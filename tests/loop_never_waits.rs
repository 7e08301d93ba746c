//! The event loop never waits on something outside it: a name lookup that
//! stalls (DNS not answering) or a syslog daemon that stops reading. Each
//! test runs camtls in a private mount namespace (root and unshare --mount)
//! where /etc/resolv.conf or /dev/log is the test's own.

mod support;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// camtls with `args`, in a mount namespace where each (file, path) of
/// `binds` is mounted over the path; `dev`, if given, becomes /dev (with
/// the real null, urandom and random in it).
fn in_namespace(binds: &[(String, &str)], dev: Option<&Path>, args: &[String]) -> Command {
    let mut steps = Vec::new();
    for (from, to) in binds {
        steps.push(format!("mount --bind {} {}", sh_quote(from), sh_quote(to)));
    }
    if let Some(dev) = dev {
        for name in ["null", "urandom", "random"] {
            let node = dev.join(name);
            std::fs::write(&node, b"").unwrap();
            steps.push(format!("mount --bind /dev/{name} {}", sh_quote(&s(&node))));
        }
        steps.push(format!("mount --bind {} /dev", sh_quote(&s(dev))));
    }
    let words: Vec<String> = camtls_command_words()
        .iter()
        .chain(args)
        .map(|w| sh_quote(w))
        .collect();
    let script = format!("{} && exec {}", steps.join(" && "), words.join(" "));
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::null());
    cmd
}

/// A process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address in the "listening on" line that camtls sends to syslog.
fn listening_in_syslog(syslog: &UnixDatagram, child: &mut Child) -> SocketAddr {
    let deadline = Instant::now() + WAIT;
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    loop {
        if let Ok(n) = syslog.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(addr) = listening_addr(&line) {
                return addr;
            }
            seen.push(line);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("camtls exited with {status}: {seen:?}");
        }
        assert!(Instant::now() < deadline, "camtls did not start: {seen:?}");
    }
}

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn get(addr: SocketAddr) -> Option<u16> {
    let mut c = ResponseReader::new(tls_connect(addr));
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c.response("GET").map(|r| r.status)
}

#[test]
fn stalled_name_lookups_take_one_thread_and_never_delay_address_routes() {
    if !can_unshare_mounts() {
        println!("skipped: a resolv.conf of the test's needs root and unshare --mount");
        return;
    }
    // A name server that never answers (and, bound, sends no ICMP either).
    // Port 53 is the only one resolv.conf can name, so the address is this
    // test process's own: suites for several binaries run side by side.
    let pid = std::process::id();
    let dns_ip = std::net::Ipv4Addr::new(127, 77, (pid >> 8) as u8, pid as u8);
    let dns = UdpSocket::bind((dns_ip, 53)).unwrap();
    let dir = TempDir::new();
    let resolv = dir.path("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {dns_ip}\noptions timeout:30 attempts:1\n"),
    )
    .unwrap();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let direct_route = format!("127.0.0.1:0={}", backend.addr);
    let args: Vec<String> = [
        "--route",
        "127.0.0.1:0=stalled-camera.example:80",
        "--route",
        &direct_route,
        "--cert",
        &s(&pair.cert),
        "--key",
        &s(&pair.key),
        "--connect-timeout",
        "3",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let child = Proxy::start_command(
        in_namespace(&[(s(&resolv), "/etc/resolv.conf")], None, &args),
        2,
    );
    let (named, direct) = (child.addrs[0], child.addrs[1]);
    assert_eq!(get(direct), Some(200));
    let before = threads_of(child.child.id());

    // Twenty viewers of the stalled camera at once.
    let viewers: Vec<_> = (0..20).map(|_| thread::spawn(move || get(named))).collect();
    thread::sleep(Duration::from_millis(1500));
    let during = threads_of(child.child.id());
    // The camera at an address answers at once meanwhile (well within the
    // 3 s connect timeout natively; qemu-user adds a slow handshake).
    let started = Instant::now();
    assert_eq!(get(direct), Some(200));
    let direct_took = started.elapsed();
    for v in viewers {
        assert_eq!(v.join().unwrap(), Some(504));
    }
    assert!(
        during <= before + 1,
        "threads: {before} before the lookups, {during} while they stall"
    );
    assert!(direct_took < Duration::from_secs(10), "{direct_took:?}");
    // Still one resolver thread, still stalled: the next viewer waits its
    // connect timeout and no new thread starts.
    assert_eq!(get(named), Some(504));
    assert!(threads_of(child.child.id()) <= before + 1);
    drop(dns);
}

#[test]
fn a_stalled_syslog_drops_lines_and_counts_them() {
    if !can_unshare_mounts() {
        println!("skipped: a socket at /dev/log needs root and unshare --mount");
        return;
    }
    let dir = TempDir::new();
    let dev = dir.path("dev");
    std::fs::create_dir(&dev).unwrap();
    // A syslog daemon that does not read (yet).
    let log_path = dev.join("log");
    let syslog = UnixDatagram::bind(&log_path).unwrap();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let args = support::args(
        backend.addr,
        Some(&pair),
        &["--syslog", "--log-level", "debug"],
    );
    let mut child = Killed(
        in_namespace(&[], Some(&dev), &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The start's lines tell the port; from here on syslogd stops reading.
    let listen = listening_in_syslog(&syslog, &mut child.0);
    syslog.set_read_timeout(None).unwrap();
    // A debug line per request: far more than the socket's queue holds.
    for n in 0..40 {
        let mut tls = tls_connect(listen);
        tls.get_ref()
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut c = ResponseReader::new(tls);
        let r = c.response("GET");
        assert_eq!(r.map(|r| r.status), Some(200), "request {n}");
    }
    // syslogd reads again: a later line says how many were dropped.
    let messages = Arc::new(Mutex::new(Vec::new()));
    let sink = messages.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = syslog.recv(&mut buf) {
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let deadline = Instant::now() + WAIT;
    loop {
        assert_eq!(get(listen), Some(200));
        let found = messages
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.contains("log lines dropped"))
            .cloned();
        if let Some(line) = found {
            assert!(
                line.contains("]: ")
                    && line.contains(" log lines dropped: syslog was not keeping up"),
                "{line}"
            );
            let count: u64 = line
                .split("]: ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(count >= 20, "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", messages.lock().unwrap());
        thread::sleep(Duration::from_millis(100));
    }
}
