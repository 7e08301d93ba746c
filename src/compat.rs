//! Link-time replacements for C library functions, for targets where a
//! dependency or the kernel falls short. Each one is swapped in with the
//! linker's `--wrap` by mk/cross-build.sh, for the targets named here only;
//! tests/proxy.rs (the timeouts) runs against every such binary.

/// Big-endian 32-bit MIPS (OpenWrt ath79): rustix 1.1's libc backend lays
/// out `struct timespec` with the nanoseconds where musl's 64-bit-time
/// layout has padding. Every `timerfd_settime` of async-io's reactor lost its
/// sub-second part, so any wait under a second disarmed the timer and no
/// timeout of camtls fired. Without a timerfd, the reactor gives the timeout
/// to `epoll_wait` in milliseconds, converted in Rust, which is right; it
/// also saves the `timerfd_settime` call before every wait.
#[cfg(all(target_arch = "mips", target_endian = "big", target_env = "musl"))]
#[no_mangle]
pub extern "C" fn __wrap_timerfd_create(
    _clock: nix::libc::c_int,
    _flags: nix::libc::c_int,
) -> nix::libc::c_int {
    nix::errno::Errno::ENOSYS.set();
    -1
}

/// Whether this build has the fallbacks below linked in: mk/cross-build.sh
/// sets CAMTLS_OLD_KERNELS where it passes their `--wrap` options.
pub const OLD_KERNELS: bool = option_env!("CAMTLS_OLD_KERNELS").is_some();

/// Linux 2.6.22 (FreshTomato MIPS) and older kernels: the calls below came in
/// 2.6.27 or 2.6.28 (later still on some architectures), and musl only
/// falls back for them without flags (epoll_create1) or on every call
/// (accept4, socket). Each wrapper makes the new call first, and once the
/// kernel has answered that it lacks it, makes only the old call and sets the
/// flags with fcntl, so current kernels see what they saw before and old ones
/// pay one call, not two. pipe2 and socketpair are left to musl's own
/// fallback (two calls at start), and polling's eventfd2 fails once at start
/// and it takes a pipe instead. Raw system calls through `syscall`, so that
/// nothing here needs the wrapped function. Not on aarch64: it has none of
/// the old calls, and its first kernel (3.7) has all of the new ones.
#[cfg(all(
    target_os = "linux",
    target_env = "musl",
    any(target_arch = "x86_64", target_arch = "mips", target_arch = "arm")
))]
mod old_kernel {
    use nix::libc::{self, c_int, c_long, sockaddr, socklen_t};
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    static NO_EPOLL_CREATE1: AtomicBool = AtomicBool::new(false);
    static NO_ACCEPT4: AtomicBool = AtomicBool::new(false);
    static NO_SOCKET_FLAGS: AtomicBool = AtomicBool::new(false);

    fn errno() -> c_int {
        nix::errno::Errno::last_raw()
    }

    /// The new call's result, unless it failed with `lacking` the first time
    /// (then the old call is made, now and from then on).
    fn first_try(
        known_old: &AtomicBool,
        lacking: c_int,
        new: impl FnOnce() -> c_long,
    ) -> Option<c_int> {
        if known_old.load(Relaxed) {
            return None;
        }
        let r = new();
        if r < 0 && errno() == lacking {
            known_old.store(true, Relaxed);
            return None;
        }
        Some(r as c_int)
    }

    /// Sets what SOCK_CLOEXEC / SOCK_NONBLOCK (the same bits as O_CLOEXEC /
    /// O_NONBLOCK, EPOLL_CLOEXEC) would have, on a new descriptor.
    fn set_flags(fd: c_int, flags: c_int) -> c_int {
        // SAFETY: fcntl on a descriptor this call just created.
        unsafe {
            if fd >= 0 && flags & libc::O_CLOEXEC != 0 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            if fd >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
            }
        }
        fd
    }

    #[no_mangle]
    pub extern "C" fn __wrap_epoll_create1(flags: c_int) -> c_int {
        // SAFETY: plain system calls with integer arguments.
        first_try(&NO_EPOLL_CREATE1, libc::ENOSYS, || unsafe {
            libc::syscall(libc::SYS_epoll_create1, flags)
        })
        .unwrap_or_else(|| {
            set_flags(
                unsafe { libc::syscall(libc::SYS_epoll_create, 1) } as c_int,
                flags,
            )
        })
    }

    /// # Safety
    /// As accept4(2): `addr` and `len` are null or point to writable memory.
    #[no_mangle]
    pub unsafe extern "C" fn __wrap_accept4(
        fd: c_int,
        addr: *mut sockaddr,
        len: *mut socklen_t,
        flags: c_int,
    ) -> c_int {
        first_try(&NO_ACCEPT4, libc::ENOSYS, || unsafe {
            libc::syscall(libc::SYS_accept4, fd, addr, len, flags)
        })
        .unwrap_or_else(|| {
            set_flags(
                unsafe { libc::syscall(libc::SYS_accept, fd, addr, len) } as c_int,
                flags,
            )
        })
    }

    #[no_mangle]
    pub extern "C" fn __wrap_socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int {
        let flags = kind & (libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK);
        // SAFETY: plain system calls with integer arguments.
        let plain =
            || unsafe { libc::syscall(libc::SYS_socket, domain, kind & !flags, protocol) } as c_int;
        if flags == 0 {
            return plain();
        }
        if !NO_SOCKET_FLAGS.load(Relaxed) {
            // SAFETY: as above.
            let r = unsafe { libc::syscall(libc::SYS_socket, domain, kind, protocol) } as c_int;
            if r >= 0 || errno() != libc::EINVAL {
                return r;
            }
            // EINVAL: the kernel refused the flags (before 2.6.27), or the
            // call itself; only a plain call that works tells them apart.
            let fd = plain();
            if fd >= 0 {
                NO_SOCKET_FLAGS.store(true, Relaxed);
            }
            return set_flags(fd, flags);
        }
        set_flags(plain(), flags)
    }
}
