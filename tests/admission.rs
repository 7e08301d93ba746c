//! Who gets in when many connect: the cap per client address, eviction of
//! unfinished connections at the global limit so that a new viewer is
//! served while a scanner holds slots, and the open-file limit fitted to
//! the connection limit. Clients play several addresses by binding source
//! addresses in 127.0.0.0/8, all of which are this machine's.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const VIEWER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Under qemu-user a refused connection may take a moment longer to close.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// How long an open connection is watched to see that it stays open.
const STAYS_OPEN: Duration = Duration::from_millis(500);

struct Setup {
    _dir: TempDir,
    _backend: Backend,
    proxy: Proxy,
}

fn start(extra: &[&str]) -> Setup {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let proxy = Proxy::start(&args(backend.addr, Some(&pair), extra));
    Setup {
        _dir: dir,
        _backend: backend,
        proxy,
    }
}

fn get(tls: &mut impl ReadWrite) {
    tls.write_all(b"GET / HTTP/1.1\r\nHost: cam\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; HELLO.len()];
    tls.read_exact(&mut got).unwrap();
    assert_eq!(got, HELLO);
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Silent connections from `from`, each accepted (the proxy has taken it
/// into a slot) before the next is made.
fn silent(from: Ipv4Addr, n: usize, proxy: &Proxy) -> Vec<TcpStream> {
    let conns: Vec<TcpStream> = (0..n).map(|_| connect_from(from, proxy.addr())).collect();
    // Accepting is asynchronous: give the loop a moment to take them all.
    std::thread::sleep(Duration::from_millis(300));
    conns
}

#[test]
fn one_address_cannot_take_more_than_its_cap() {
    let s = start(&["--max-per-address", "3"]);
    let mut held = silent(SCANNER, 3, &s.proxy);
    let mut fourth = connect_from(SCANNER, s.proxy.addr());
    assert!(
        closed_within(&mut fourth, CLOSE_WITHIN),
        "a fourth connection from one address is closed"
    );
    // Another address is served, and the first three are still open.
    get(&mut tls_connect_from(VIEWER, s.proxy.addr()));
    for c in &mut held {
        assert!(!closed_within(c, STAYS_OPEN), "held connections stay open");
    }
    s.proxy
        .wait_for_log("127.0.0.2 already has 3 connections open (--max-per-address)");
    // Once one closes, that address may connect again.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    get(&mut tls_connect_from(SCANNER, s.proxy.addr()));
}

#[test]
fn at_the_limit_a_new_viewer_evicts_an_unfinished_connection() {
    let s = start(&["--max-connections", "4", "--max-per-address", "10"]);
    let mut scans = silent(SCANNER, 4, &s.proxy);
    // The viewer gets in, handshakes and is served.
    get(&mut tls_connect_from(VIEWER, s.proxy.addr()));
    let closed = scans
        .iter_mut()
        .map(|c| closed_within(c, STAYS_OPEN))
        .filter(|&closed| closed)
        .count();
    assert_eq!(closed, 1, "exactly one unfinished connection made room");
    s.proxy.wait_for_log(
        "connection limit (4) reached: closed an unfinished connection from 127.0.0.2",
    );
}

#[test]
fn established_connections_are_not_evicted() {
    let s = start(&["--max-connections", "3", "--max-per-address", "10"]);
    // Three viewers that have each had an answer and keep their connection.
    let mut viewers: Vec<_> = (0..3)
        .map(|_| {
            let mut tls = tls_connect_from(VIEWER, s.proxy.addr());
            get(&mut tls);
            tls
        })
        .collect();
    let mut late = connect_from(SCANNER, s.proxy.addr());
    assert!(
        closed_within(&mut late, CLOSE_WITHIN),
        "with every slot proven, a newcomer is refused"
    );
    for tls in &mut viewers {
        get(tls);
    }
    s.proxy
        .wait_for_log("connection limit (3) reached: refusing 127.0.0.2");
}

/// camtls started under `prlimit` with these open-file limits.
fn under_nofile_limit(soft: u64, hard: u64, extra: &[&str]) -> (TempDir, Backend, Proxy) {
    let dir = TempDir::new();
    let pair = write_pair(&dir, KeyKind::Ecdsa);
    let (backend, _heads) = Backend::fixed(HELLO);
    let script = dir.path("run.sh");
    let words: Vec<String> = camtls_command_words()
        .iter()
        .chain(args(backend.addr, Some(&pair), extra).iter())
        .map(|w| sh_quote(w))
        .collect();
    std::fs::write(
        &script,
        format!("exec prlimit --nofile={soft}:{hard} {}\n", words.join(" ")),
    )
    .unwrap();
    let proxy = Proxy::start_command(
        {
            let mut c = std::process::Command::new("sh");
            c.arg(&script).stdin(Stdio::null());
            c
        },
        1,
    );
    (dir, backend, proxy)
}

#[test]
fn a_low_open_file_limit_lowers_the_connection_limit_once() {
    // 64 descriptors hold (64 - 16 - 1) / 2 = 23 connections.
    let (_dir, _backend, proxy) = under_nofile_limit(64, 64, &[]);
    proxy.wait_for_log(
        "the open-file limit (64) holds 23 connections at 2 descriptors each: \
         serving at most 23 instead of --max-connections 128",
    );
    // Over the limit from many addresses: refused at camtls's own limit, so
    // accepting never runs out of descriptors, and viewers still get in
    // once the crowd is gone.
    let crowd: Vec<_> = (0..40u8)
        .map(|i| connect_from(Ipv4Addr::new(127, 0, 1, i), proxy.addr()))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(crowd);
    std::thread::sleep(Duration::from_millis(500));
    get(&mut tls_connect_from(VIEWER, proxy.addr()));
    let log = proxy.log();
    assert_eq!(log.matches("the open-file limit").count(), 1, "{log}");
    assert!(!log.contains("accepting on"), "{log}");
}

#[test]
fn a_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_dir, _backend, proxy) = under_nofile_limit(40, 4096, &[]);
    get(&mut tls_connect_from(VIEWER, proxy.addr()));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(open_files, ["4096", "4096"], "{limits}");
    assert!(
        !proxy.log().contains("the open-file limit"),
        "{}",
        proxy.log()
    );
}
