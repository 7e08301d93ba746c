#!/bin/sh
# Builds a static OpenSSL for one router target, trimmed to what a TLS server
# needs, and prints the directory to hand to openssl-sys as OPENSSL_DIR.
#
#   mk/openssl.sh TRIPLE CACHE_DIR
#
# The source is the tree that the openssl-src crate (pinned in Cargo.lock)
# carries, so nothing is downloaded but a registry package. A build is kept
# under CACHE_DIR/openssl/VERSION-KEY/TRIPLE, KEY being a hash of this file:
# changing an option below builds anew, anything else reuses it.
set -eu

triple=$1
cache=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

# What a TLS 1.2/1.3 server with ECDSA or RSA certificates does not use. Every
# algorithm compiled in is linked in: OpenSSL 3's providers reference their
# whole algorithm tables, so the linker cannot drop what is unused.
OPTIONS="no-shared no-module no-dso no-engine no-legacy
  no-tests no-docs no-apps no-autoload-config no-ui-console no-async
  no-comp no-http no-sock no-dgram no-ktls no-sslkeylog
  no-ssl3 no-tls1 no-tls1_1 no-dtls no-quic no-srp no-psk no-srtp
  no-nextprotoneg no-ct no-ocsp no-cms no-ts no-cmp no-rfc3779
  no-dsa no-ec2m no-sm2 no-sm3 no-sm4 no-ml-dsa no-slh-dsa no-lms
  no-aria no-bf no-camellia no-cast no-des no-idea no-rc2 no-rc4 no-rc5
  no-seed no-md4 no-mdc2 no-rmd160 no-whirlpool no-blake2 no-siphash
  no-scrypt no-argon2 no-siv no-ocb no-cmac no-multiblock no-filenames
  no-ml-kem"

# OpenSSL's target name, zig's target and CPU (matching rustc's defaults for
# the Rust target, so the objects link), and extra options. Every target is
# built for size (-Os); OPENSSL_SMALL_FOOTPRINT (simpler, slower code paths
# for smaller code) stays where the speed it costs is small or the room in
# the size budget is not there (x86_64 has 9 kB; MIPS has no assembly for
# it to skip).
small=-DOPENSSL_SMALL_FOOTPRINT
case $triple in
mips-unknown-linux-musl)
  cfg=linux-mips32 zt=mips-linux-musleabi cpu=mips32r2
  # clang mis-assembles OpenSSL's MIPS perlasm (handshakes fail with
  # "decrypt error"); 32-bit MIPS has no libatomic for __atomic_*; and the
  # executable is not position-independent (mk/cross-build.sh), so neither
  # need OpenSSL be: MIPS PIC calls go through the GOT, 370 kB more code.
  extra="no-asm no-pic -DBROKEN_CLANG_ATOMICS" ;;
mipsel-unknown-linux-musl)
  cfg=linux-mips32 zt=mipsel-linux-musleabi cpu=mips32r2
  extra="no-asm no-pic -DBROKEN_CLANG_ATOMICS" ;;
armv7-unknown-linux-musleabihf)
  cfg=linux-armv4 zt=arm-linux-musleabihf cpu=generic+v7a+vfp3d16+thumb2-neon
  extra=""
  # Without OPENSSL_SMALL_FOOTPRINT, GCM takes its bulk NEON routines where
  # the CPU has NEON (chosen at run time): 39 % fewer instructions per MiB
  # of AES-128-GCM on a Cortex-A7, 2 % per ECDSA handshake, for 22 kB
  # (docs/performance.md, "Size-first options, measured per target").
  small="" ;;
armv7-unknown-linux-musleabi)
  cfg=linux-armv4 zt=arm-linux-musleabi cpu=generic+v7a+thumb2+soft_float-neon
  extra="" ;;
aarch64-unknown-linux-musl)
  cfg=linux-aarch64 zt=aarch64-linux-musl cpu=generic
  extra=""
  # 6 % fewer instructions per ECDSA handshake for 14 kB (as above).
  small="" ;;
x86_64-unknown-linux-musl)
  cfg=linux-x86_64 zt=x86_64-linux-musl cpu=x86_64
  extra=""
  # OpenSSL's AVX-512 AES-GCM and AES-XTS are 740 kB of unrolled assembly
  # for server CPUs; the AES-NI and AVX2 code stays.
  avx512=off ;;
*)
  echo "mk/openssl.sh: no OpenSSL settings for $triple" >&2
  exit 1 ;;
esac

version=$(sed -n '/^name = "openssl-src"$/{n;s/^version = "\(.*\)"$/\1/p;}' "$root/Cargo.lock")
[ -n "$version" ] || { echo "mk/openssl.sh: openssl-src is not in Cargo.lock" >&2; exit 1; }
key=$(cat "$0" "$here/openssl-trim.pl" | sha256sum | cut -c1-12)
prefix=$cache/openssl/$version-$key/$triple
mkdir -p "$(dirname "$prefix")"
# Two builds of the same target (make -j, or two clones) take turns.
exec 9>"$prefix.lock"
flock 9
if [ -f "$prefix/.done" ]; then
  echo "$prefix"
  exit 0
fi

# The crate's source, as cargo unpacked it.
cargo fetch --locked --manifest-path "$root/Cargo.toml" >&2
src=
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/openssl-src-"$version"/openssl; do
  [ -f "$d/Configure" ] && src=$d
done
[ -n "$src" ] || { echo "mk/openssl.sh: openssl-src $version not unpacked" >&2; exit 1; }

zig=$(python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
build=$prefix.build
rm -rf "$build" "$prefix"
mkdir -p "$build"
# A copy, since the provider's tables are edited (mk/openssl-trim.pl).
cp -R "$src" "$build/src"
perl "$here/openssl-trim.pl" "$build/src/providers/defltprov.c"
# Each TLS connection's record layers (one per direction) keep arrays of
# SSL_MAX_PIPELINES records and buffers, and the connection one more: 9.6 kB
# of a 24 kB idle connection. Pipelining needs an engine that encrypts
# several records at once (SSL_CTX_set_max_pipelines, never called here), so
# one of each is all a connection ever uses.
perl -pi -e 's/^(#\s*define SSL_MAX_PIPELINES) 32$/$1 1/ and $n++; END { $n or die "$ARGV: no SSL_MAX_PIPELINES\n" }' \
  "$build/src/include/openssl/ssl.h.in"
if [ "${avx512:-}" = off ]; then
  # Each generator then takes its own "assembler too old" branch.
  for f in crypto/modes/asm/aes-gcm-avx512.pl crypto/aes/asm/aesni-xts-avx512.pl; do
    perl -0pi -e 's/\$avx512vaes\s*=\s*\(/\$avx512vaes = 0 && (/g or die "$ARGV: no assembler check\n"' \
      "$build/src/$f"
  done
fi
# OpenSSL's Makefile wants one word for CC.
printf '#!/bin/sh\nexec "%s" cc -target %s -mcpu=%s "$@"\n' "$zig" "$zt" "$cpu" >"$build/cc"
printf '#!/bin/sh\nexec "%s" ar "$@"\n' "$zig" >"$build/ar"
printf '#!/bin/sh\nexec "%s" ranlib "$@"\n' "$zig" >"$build/ranlib"
chmod +x "$build/cc" "$build/ar" "$build/ranlib"

echo "building OpenSSL $version for $triple (a few minutes, once)" >&2
# shellcheck disable=SC2086 # the option lists are word lists
(
  cd "$build"
  CC=$build/cc AR=$build/ar RANLIB=$build/ranlib \
    perl "$build/src/Configure" "$cfg" $OPTIONS $extra \
    --prefix="$prefix" --libdir=lib --openssldir=/etc/ssl \
    -Os -flto $small -ffunction-sections -fdata-sections \
    -fno-asynchronous-unwind-tables -fno-unwind-tables >configure.log
  make -j"$(nproc)" build_libs >make.log 2>&1 || { tail -n 40 make.log; exit 1; }
  make install_dev >install.log 2>&1
) >&2
rm -rf "$build"
touch "$prefix/.done"
echo "$prefix"
