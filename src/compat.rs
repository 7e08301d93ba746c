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

/// 32-bit MIPS and ARM: musl reads the clock with `clock_gettime64` (Linux
/// 5.1) and, when the kernel answers ENOSYS, with `clock_gettime`, on every
/// read: two system calls per read on FreshTomato's 2.6.22 and 2.6.36
/// kernels. These wrappers of `clock_gettime`, `time` and `gettimeofday`
/// (with a 64-bit time_t their symbols are `__clock_gettime64`, `__time64`
/// and `__gettimeofday_time64`, which Rust's libc and OpenSSL call) find
/// out once, at the first read, whether the kernel has `clock_gettime64`: not
/// if it reports a release before 5.1, nor if it answers ENOSYS to one call.
/// Such a kernel then gets `clock_gettime` directly, its 32-bit timespec
/// widened here; any other kernel gets musl's own function, vDSO and all, as
/// before. (Reads that musl makes inside itself, such as its resolver's, are
/// not reached by `--wrap` and still pay two calls.)
#[cfg(all(
    target_os = "linux",
    target_env = "musl",
    target_pointer_width = "32",
    any(target_arch = "mips", target_arch = "arm")
))]
mod time32 {
    use super::before_5_1;
    use nix::libc::{self, c_int, c_long, c_void};
    use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

    // The libc crate names the old call, not the time64 one.
    #[cfg(target_arch = "mips")]
    const SYS_CLOCK_GETTIME64: c_long = 4403;
    #[cfg(target_arch = "arm")]
    const SYS_CLOCK_GETTIME64: c_long = 403;

    const UNKNOWN: u8 = 0;
    const TIME64: u8 = 1;
    const TIME32: u8 = 2;
    static KERNEL: AtomicU8 = AtomicU8::new(UNKNOWN);

    extern "C" {
        fn __real___clock_gettime64(clock: c_int, ts: *mut c_void) -> c_int;
        fn __real___time64(t: *mut i64) -> i64;
        fn __real___gettimeofday_time64(tv: *mut c_void, tz: *mut c_void) -> c_int;
    }

    /// Whether this kernel lacks `clock_gettime64`, found out once.
    fn time32_only() -> bool {
        match KERNEL.load(Relaxed) {
            TIME64 => return false,
            TIME32 => return true,
            _ => {}
        }
        let saved = nix::errno::Errno::last_raw();
        let old = nix::sys::utsname::uname()
            .is_ok_and(|u| before_5_1(u.release().as_encoded_bytes()))
            || {
                let mut ts = [0i64; 2];
                // SAFETY: a 16-byte buffer, as the kernel's 64-bit timespec.
                let r = unsafe {
                    libc::syscall(SYS_CLOCK_GETTIME64, libc::CLOCK_MONOTONIC, ts.as_mut_ptr())
                };
                r < 0 && nix::errno::Errno::last_raw() == libc::ENOSYS
            };
        nix::errno::Errno::set_raw(saved);
        KERNEL.store(if old { TIME32 } else { TIME64 }, Relaxed);
        old
    }

    /// The clock read the old way, into musl's 64-bit `struct timespec`
    /// (tv_sec, then tv_nsec in the low half of the next 8 bytes, whichever
    /// the byte order: one i64 store fills it and its padding).
    unsafe fn clock32(clock: c_int, ts: *mut i64) -> c_int {
        let mut t32: [c_long; 2] = [0; 2];
        // SAFETY: the old call writes two longs.
        let r = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, t32.as_mut_ptr()) } as c_int;
        if r == 0 {
            // SAFETY: the caller's timespec is 16 bytes.
            unsafe {
                *ts = t32[0] as i64;
                *ts.add(1) = t32[1] as i64;
            }
        }
        r
    }

    /// # Safety
    /// As clock_gettime(3).
    #[no_mangle]
    pub unsafe extern "C" fn __wrap___clock_gettime64(clock: c_int, ts: *mut c_void) -> c_int {
        if time32_only() {
            unsafe { clock32(clock, ts as *mut i64) }
        } else {
            unsafe { __real___clock_gettime64(clock, ts) }
        }
    }

    /// # Safety
    /// As time(3).
    #[no_mangle]
    pub unsafe extern "C" fn __wrap___time64(t: *mut i64) -> i64 {
        if !time32_only() {
            return unsafe { __real___time64(t) };
        }
        let mut ts = [0i64; 2];
        unsafe { clock32(libc::CLOCK_REALTIME, ts.as_mut_ptr()) };
        if !t.is_null() {
            unsafe { *t = ts[0] };
        }
        ts[0]
    }

    /// # Safety
    /// As gettimeofday(3): musl's 64-bit `struct timeval` (two 8-byte fields).
    #[no_mangle]
    pub unsafe extern "C" fn __wrap___gettimeofday_time64(
        tv: *mut c_void,
        tz: *mut c_void,
    ) -> c_int {
        if !time32_only() {
            return unsafe { __real___gettimeofday_time64(tv, tz) };
        }
        if tv.is_null() {
            return 0;
        }
        let mut ts = [0i64; 2];
        unsafe { clock32(libc::CLOCK_REALTIME, ts.as_mut_ptr()) };
        let tv = tv as *mut i64;
        unsafe {
            *tv = ts[0];
            *tv.add(1) = ts[1] / 1000;
        }
        0
    }

    /// 32-bit MIPS and ARM with a 64-bit time_t: std's futex waits (thread
    /// parking, condition variables with a timeout) hand the libc crate's
    /// 64-bit `struct timespec` to the old `futex` call, which reads it as two
    /// 32-bit words. On little-endian the fraction of a second was lost; on
    /// big-endian the deadline became about zero, so every timed wait returned
    /// at once. This wrapper of `syscall` gives such a wait the 32-bit timespec
    /// the old call reads (the deadline is CLOCK_MONOTONIC or a relative time:
    /// seconds fit in 32 bits). Every other call passes through unchanged.
    /// On o32 and ARM EABI a variadic call passes its integer arguments as a
    /// call with that many `long`s does, so the fixed signature reads them.
    mod futex32 {
        use nix::libc::{self, c_long};

        extern "C" {
            fn __real_syscall(number: c_long, ...) -> c_long;
        }

        const FUTEX_CMD_MASK: c_long =
            !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as c_long);

        /// # Safety
        /// As syscall(2).
        #[no_mangle]
        pub unsafe extern "C" fn __wrap_syscall(
            number: c_long,
            a: c_long,
            op: c_long,
            c: c_long,
            timeout: c_long,
            e: c_long,
            f: c_long,
        ) -> c_long {
            let cmd = op & FUTEX_CMD_MASK;
            if number == libc::SYS_futex
                && (cmd == libc::FUTEX_WAIT as c_long || cmd == libc::FUTEX_WAIT_BITSET as c_long)
                && timeout != 0
            {
                // SAFETY: a futex wait's fourth argument is a timespec.
                let wide = unsafe { &*(timeout as *const libc::timespec) };
                let old: [c_long; 2] = [wide.tv_sec as c_long, wide.tv_nsec];
                return unsafe { __real_syscall(number, a, op, c, old.as_ptr() as c_long, e, f) };
            }
            unsafe { __real_syscall(number, a, op, c, timeout, e, f) }
        }
    }
}

/// Whether a kernel release string (NUL-padded, as uname gives it) names a
/// Linux before 5.1, the first with the 32-bit time64 calls. Anything that
/// does not parse counts as new.
#[allow(dead_code)]
fn before_5_1(release: &[u8]) -> bool {
    let s = release.split(|&c| c == 0).next().unwrap_or_default();
    let mut parts = s.split(|&c| !c.is_ascii_digit());
    let num = |p: Option<&[u8]>| -> Option<u32> { std::str::from_utf8(p?).ok()?.parse().ok() };
    match (num(parts.next()), num(parts.next())) {
        (Some(major), Some(minor)) => (major, minor) < (5, 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::before_5_1;

    #[test]
    fn kernels_before_5_1() {
        for old in [
            "2.6.22.19",
            "2.6.36.4brcmarm",
            "4.19.0",
            "5.0.21",
            "3.10.14\0\0\0",
        ] {
            assert!(before_5_1(old.as_bytes()), "{old}");
        }
        for new in ["5.1.0", "5.10.0-rc1", "6.6.73", "10.0", "", "x", "5"] {
            assert!(!before_5_1(new.as_bytes()), "{new}");
        }
    }
}
