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
