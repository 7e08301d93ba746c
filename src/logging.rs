//! Where the log goes: stderr (the terminal, procd's log) or syslog
//! (/dev/log; Tomato's log page shows syslog), whose writer never waits for
//! syslogd.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

/// Installs the logger: stderr (the terminal, procd's log) or syslog
/// (/dev/log; Tomato's log page shows syslog).
pub fn init_logging(level: log::LevelFilter, syslog: bool) {
    SYSLOG.store(syslog, std::sync::atomic::Ordering::Relaxed);
    let result = if syslog {
        log::set_boxed_logger(Box::new(Syslog {
            socket: Mutex::new((None, 0)),
        }))
        .map(|()| log::set_max_level(level))
    } else {
        simple_logger::SimpleLogger::new().with_level(level).init()
    };
    if result.is_err() {
        eprintln!("camtls: logging was already set up");
    }
}

static SYSLOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once the log goes to syslog rather than stderr.
pub fn logs_to_syslog() -> bool {
    SYSLOG.load(std::sync::atomic::Ordering::Relaxed)
}

/// RFC 3164 messages to the local syslog daemon, facility daemon. Written
/// here rather than through nix's syslog (libc's syslog(3)), which waits
/// while syslogd's queue is full: the event loop must never wait.
struct Syslog {
    /// The socket, and the lines dropped since the last one sent.
    socket: Mutex<(Option<UnixDatagram>, u64)>,
}

const SYSLOG_SOCKET: &str = "/dev/log";

impl log::Log for Syslog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let severity = match record.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 6,
            log::Level::Debug | log::Level::Trace => 7,
        };
        let message = format!(
            "<{}>camtls[{}]: {}",
            3 * 8 + severity,
            std::process::id(),
            record.args()
        );
        let Ok(mut state) = self.socket.lock() else {
            return;
        };
        let (socket, dropped) = &mut *state;
        // The event loop never waits for syslogd: while its queue is full,
        // lines are dropped, and the next line that goes says how many.
        if *dropped > 0 {
            let note = format!(
                "<{}>camtls[{}]: {dropped} log lines dropped: syslog was not keeping up",
                3 * 8 + 4,
                std::process::id()
            );
            match send(socket, note.as_bytes()) {
                Sent::Yes => *dropped = 0,
                Sent::Busy => {
                    *dropped += 1;
                    return;
                }
                Sent::No => {}
            }
        }
        match send(socket, message.as_bytes()) {
            Sent::Yes => return,
            Sent::Busy => {
                *dropped += 1;
                return;
            }
            Sent::No => {}
        }
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            &message[message.find('>').unwrap_or(0) + 1..]
        );
    }

    fn flush(&self) {}
}

enum Sent {
    Yes,
    /// syslogd's queue is full.
    Busy,
    /// No syslog socket.
    No,
}

/// One datagram to /dev/log, never waiting; syslogd may restart, so a
/// failed send reconnects once.
fn send(socket: &mut Option<UnixDatagram>, message: &[u8]) -> Sent {
    for _ in 0..2 {
        if socket.is_none() {
            *socket = UnixDatagram::unbound()
                .and_then(|s| s.connect(SYSLOG_SOCKET).map(|()| s))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .ok();
        }
        match socket.as_ref().map(|s| s.send(message)) {
            Some(Ok(_)) => return Sent::Yes,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return Sent::Busy,
            _ => *socket = None,
        }
    }
    Sent::No
}
