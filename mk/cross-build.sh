#!/bin/sh
# Builds the fully static camtls for one router target and copies it to OUT
# (left untouched when the bytes are the same, so make's timestamps hold).
#
#   mk/cross-build.sh TRIPLE OUT
#
# Toolchain: nightly rustc with -Z build-std (no prebuilt std exists for most
# of these targets), zig as C compiler and linker through cargo-zigbuild, and
# an OpenSSL this project configures itself (mk/openssl.sh).
# CAMTLS_CACHE (default ~/.cache/camtls) keeps OpenSSL and the cargo target
# directory between builds and between clones.
set -eu

triple=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${CAMTLS_CACHE:-$HOME/.cache/camtls}
target_dir=$cache/cargo

ossl=$("$here/openssl.sh" "$triple" "$cache")
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')

# build-std does not build Rust's own crt1.o; zig's musl supplies it. With
# panic=abort nothing unwinds, so no unwind tables.
# lld's notice about the empty rustlib directory of build-std is noise.
rustflags="-C link-self-contained=no -C force-unwind-tables=no -A linker-messages"
case $triple in
mips*)
  # lld's default static-pie on MIPS resolves weak undefined symbols to the
  # load address and the binary crashes at start; a plain static executable
  # does not.
  rustflags="$rustflags -C relocation-model=static" ;;
esac
case $triple in
mips*)
  # A MIPS32 release 1 CPU gets one line and exit 2, not SIGILL: the entry
  # point checks first, in release 1 instructions (mk/mips-r2-check.S).
  zig=$(python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
  case $triple in mipsel-*) zt=mipsel-linux-musleabi ;; *) zt=mips-linux-musleabi ;; esac
  check=$cache/mips-r2-check-$triple.o
  "$zig" cc -target "$zt" -mcpu=mips32 -fno-pic -c "$here/mips-r2-check.S" -o "$check"
  rustflags="$rustflags -C link-arg=$check -C link-arg=-Wl,-e,camtls_start" ;;
esac
case $triple in
mips-*)
  # Big-endian MIPS: the reactor must not use a timerfd (src/compat.rs).
  rustflags="$rustflags -C link-arg=-Wl,--wrap=timerfd_create" ;;
esac
case $triple in
x86_64-* | mips* | armv7*)
  # Old kernels (FreshTomato MIPS runs 2.6.22): calls from 2.6.27 on get a
  # fallback (src/compat.rs). On armv7, rustix's raw backend (polling's
  # epoll) goes past them; its Tomato kernel, 2.6.36, has those calls.
  # aarch64 Linux began with 3.7, which has them all.
  for f in epoll_create1 accept4 socket; do
    rustflags="$rustflags -C link-arg=-Wl,--wrap=$f"
  done
  export CAMTLS_OLD_KERNELS=1 ;;
esac
case $triple in
mips* | armv7*)
  # 32-bit time64: a kernel before 5.1 gets clock_gettime directly, found
  # out once, instead of musl's clock_gettime64 then clock_gettime on every
  # read (src/compat.rs).
  # With a 64-bit time_t these are musl's symbols for clock_gettime, time
  # and gettimeofday.
  for f in __clock_gettime64 __time64 __gettimeofday_time64; do
    rustflags="$rustflags -C link-arg=-Wl,--wrap=$f"
  done
  # std's timed futex waits pass a 64-bit timespec to the 32-bit call.
  rustflags="$rustflags -C link-arg=-Wl,--wrap=syscall" ;;
esac
case $triple in
x86_64-*)
  # rustix (polling's epoll, async-io's sockets) would make raw system calls
  # here, past the wrappers above; through musl, as on MIPS, where rustix has
  # no raw backend, the x86_64 build runs the same paths on an old-kernel
  # test floor (tests/tomato/run.sh).
  rustflags="$rustflags --cfg rustix_use_libc" ;;
esac
case $triple in
mips* | armv7*)
  # zig's musl and the OpenSSL built against it use a 64-bit time_t on 32-bit
  # targets; the libc crate must too, or every time_t crossing into OpenSSL
  # (ASN1_TIME_set: certificate dates) is garbage. The variable is the same
  # switch for the older libc crate inside std.
  rustflags="$rustflags --cfg libc_unstable_musl_v1_2"
  export RUST_LIBC_UNSTABLE_MUSL_V1_2_3=1 ;;
esac

echo "building $out" >&2
cd "$root"
env "${upper}_OPENSSL_DIR=$ossl" "${upper}_OPENSSL_STATIC=1" \
  "CARGO_TARGET_${upper}_RUSTFLAGS=$rustflags" \
  cargo +nightly zigbuild --quiet --release --locked --target "$triple" \
  -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size \
  --target-dir "$target_dir" --bin camtls

built=$target_dir/$triple/release/camtls
mkdir -p "$(dirname "$out")"
# --strip-all also drops what the linker's strip keeps: MIPS .pdr (procedure
# descriptors, 400 kB that nothing at run time reads) and .comment.
tmp=$out.tmp.$$
llvm-objcopy --strip-all "$built" "$tmp"
if cmp -s "$tmp" "$out"; then
  rm -f "$tmp"
else
  mv "$tmp" "$out"
fi
