//! SIGHUP, SIGTERM and SIGINT as events on the event loop, through a
//! self-pipe: the handler only writes the signal's number to a pipe.
//!
//! Kept by hand rather than `async-signal`: that crate (with
//! signal-hook-registry) made the x86_64 static build 6.4 kB larger, past
//! its size budget, to do what these 40 lines do.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal as NixSignal};
use smol::Async;

use crate::Error;

static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let saved = Errno::last_raw();
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe drops the byte,
        // and an event already queued has the same effect.
        unsafe { nix::libc::write(fd, (&byte as *const u8).cast(), 1) };
        Errno::set_raw(saved);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the certificate and key.
    Reload,
    /// SIGTERM or SIGINT: stop, gracefully.
    Stop(&'static str),
}

pub struct Signals {
    read: Async<OwnedFd>,
    _write: OwnedFd,
}

/// Installs the handlers. From here on these signals no longer end the process.
pub fn install() -> Result<Signals, Error> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .map_err(|e| Error::new(format!("cannot create the signal pipe: {e}")))?;
    PIPE_WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [NixSignal::SIGHUP, NixSignal::SIGTERM, NixSignal::SIGINT] {
        // SAFETY: the handler only performs async-signal-safe operations.
        unsafe { sigaction(signal, &action) }
            .map_err(|e| Error::new(format!("cannot install the {signal} handler: {e}")))?;
    }
    let read =
        Async::new(read).map_err(|e| Error::new(format!("cannot watch the signal pipe: {e}")))?;
    Ok(Signals {
        read,
        _write: write,
    })
}

impl Signals {
    pub async fn next(&self) -> Signal {
        loop {
            let mut byte = [0u8; 1];
            let read = self
                .read
                .read_with(|fd| nix::unistd::read(fd, &mut byte).map_err(std::io::Error::from))
                .await;
            if !matches!(read, Ok(1)) {
                continue;
            }
            match i32::from(byte[0]) {
                nix::libc::SIGHUP => return Signal::Reload,
                nix::libc::SIGTERM => return Signal::Stop("SIGTERM"),
                nix::libc::SIGINT => return Signal::Stop("SIGINT"),
                _ => continue,
            }
        }
    }
}
