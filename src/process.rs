//! The process around the proxy: the kernel check, the open-file limit,
//! detaching (--daemon), the pid file and dropping root (--user).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::{ForkResult, Uid, User};

use crate::Error;

/// The event loop needs epoll. The static release builds make epoll_create1
/// fall back to epoll_create, so they start on Linux 2.6.22 (FreshTomato
/// MIPS, src/compat.rs); other builds need epoll_create1 (2.6.27). A kernel
/// without it (too old, or built without CONFIG_EPOLL) is told in one line
/// instead of failing somewhere inside the reactor.
pub fn check_kernel() -> Result<(), Error> {
    use nix::sys::epoll::{Epoll, EpollCreateFlags};
    // The descriptor is closed again when the Epoll is dropped.
    if let Err(nix::errno::Errno::ENOSYS) = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let needs = if crate::compat::OLD_KERNELS {
            "epoll (Linux 2.6.22 or later, with CONFIG_EPOLL)"
        } else {
            "epoll_create1 (Linux 2.6.27 or later; the x86_64 and MIPS static binaries run from 2.6.22)"
        };
        return Err(Error::new(format!(
            "this kernel ({}) is too old: camtls needs {needs}",
            release.trim()
        )));
    }
    Ok(())
}

/// Descriptors each connection needs: the client's socket and the backend's.
const DESCRIPTORS_PER_CONNECTION: u64 = 2;
/// Descriptors besides connections: standard streams, the reactor's epoll,
/// eventfd and signal pipe, syslog, a certificate or auth file being read on
/// SIGHUP, and room for a connection being accepted and refused.
const DESCRIPTORS_SPARE: u64 = 16;

/// Raises the soft open-file limit to the hard one, and returns how many
/// connections that limit can hold (at most `wanted`), so that camtls
/// refuses connections at its own limit instead of failing to accept or to
/// reach the backend. Logs once when the limit has to be lowered.
pub fn fit_descriptor_limit(wanted: usize, listeners: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    let limit = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let room =
        limit.saturating_sub(DESCRIPTORS_SPARE + listeners as u64) / DESCRIPTORS_PER_CONNECTION;
    let fits = usize::try_from(room).unwrap_or(usize::MAX).max(1);
    if fits < wanted {
        log::warn!(
            "the open-file limit ({limit}) holds {fits} connections at {DESCRIPTORS_PER_CONNECTION} \
             descriptors each: serving at most {fits} instead of --max-connections {wanted} \
             (raise it with ulimit -n)"
        );
        return fits;
    }
    wanted
}

/// The user to switch to after binding, looked up before anything starts so
/// that a typo is reported on the terminal.
pub fn lookup_user(name: &str) -> Result<User, Error> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(Error::new(format!("--user {name}: no such user"))),
        Err(e) => Err(Error::new(format!(
            "--user {name}: cannot look up the user: {e}"
        ))),
    }
}

/// Switches to `user` and its primary group, for good.
pub fn drop_privileges(user: &User) -> Result<(), Error> {
    let fail =
        |what: &str, e: nix::Error| Error::new(format!("--user {}: {what} failed: {e}", user.name));
    if Uid::effective().is_root() {
        nix::unistd::setgroups(&[user.gid]).map_err(|e| fail("setgroups", e))?;
    }
    nix::unistd::setgid(user.gid).map_err(|e| fail("setgid", e))?;
    nix::unistd::setuid(user.uid).map_err(|e| fail("setuid", e))?;
    // Getting root back must now be impossible.
    if !user.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(Error::new(format!(
            "--user {}: could still regain root",
            user.name
        )));
    }
    Ok(())
}

/// Detaches from the terminal: the child leads a new session with stdio on
/// /dev/null, and the parent waits until the child reports through a pipe
/// that it serves (exit 0) or why it cannot (the reason on the terminal,
/// exit 1), so a script that starts `camtls --daemon` finds the pid file and
/// sees start errors. Must run before any thread starts.
pub fn daemonize() -> Result<Detached, Error> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::new(format!("--daemon: cannot create a pipe: {e}")))?;
    // SAFETY: single-threaded at this point (the reactor has not started).
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => {
            drop(write);
            let mut report = Vec::new();
            let _ = std::io::Read::read_to_end(&mut fs::File::from(read), &mut report);
            match report.strip_prefix(b"ok") {
                Some(_) => std::process::exit(0),
                None if report.is_empty() => {
                    eprintln!("camtls: the detached process ended before it served");
                    std::process::exit(1)
                }
                None => {
                    eprintln!("camtls: {}", String::from_utf8_lossy(&report));
                    std::process::exit(1)
                }
            }
        }
        Ok(ForkResult::Child) => drop(read),
        Err(e) => return Err(Error::new(format!("--daemon: fork failed: {e}"))),
    }
    nix::unistd::setsid().map_err(|e| Error::new(format!("--daemon: setsid failed: {e}")))?;
    let _ = std::env::set_current_dir("/");
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::new(format!("--daemon: cannot open /dev/null: {e}")))?;
    let _ = nix::unistd::dup2_stdin(&null);
    let _ = nix::unistd::dup2_stdout(&null);
    let _ = nix::unistd::dup2_stderr(&null);
    Ok(Detached {
        report: fs::File::from(write),
    })
}

/// The detached child's end of the pipe to the waiting parent.
pub struct Detached {
    report: fs::File,
}

impl Detached {
    /// Serving: the parent exits 0.
    pub fn ready(mut self) {
        let _ = self.report.write_all(b"ok");
    }

    /// Not serving: the parent prints `why` and exits 1.
    pub fn failed(mut self, why: &Error) {
        let _ = self.report.write_all(why.to_string().as_bytes());
    }
}

/// The pid file, removed again when dropped.
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, Error> {
        fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| Error::new(format!("cannot write pid file {}: {e}", path.display())))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
