#!/bin/sh
# make bench-opt, step 1: camtls for one target with its OpenSSL built as
# shipped (size: -Os, with -DOPENSSL_SMALL_FOOTPRINT but on armv7 hard-float
# and aarch64, mk/openssl.sh), speed-first (speed: -O2, without
# OPENSSL_SMALL_FOOTPRINT, every other option the same), or each way alone
# (os-small: -Os with the define; os-nosmall: -Os without it; o2-small: -O2
# with it), to tell which brings what.
#
#   tests/bench/opt-build.sh TRIPLE OUT size|speed|os-small|os-nosmall|o2-small
#
# The variants build from a copy of the tracked tree whose mk/openssl.sh has
# its flags changed; that copy's OpenSSL cache key differs (it hashes the
# file), so the builds sit side by side in CAMTLS_CACHE, and mk/openssl.sh,
# with the key of the shipped build, stays as it is.
set -eu

triple=$1
out=$2
opt=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
case $opt in
size) exec "$root/mk/cross-build.sh" "$triple" "$out" ;;
speed) flags="-O2 -flto" ;;
os-small) flags="-Os -flto -DOPENSSL_SMALL_FOOTPRINT" ;;
os-nosmall) flags="-Os -flto" ;;
o2-small) flags="-O2 -flto -DOPENSSL_SMALL_FOOTPRINT" ;;
*) echo "opt-build.sh: size, speed, os-small, os-nosmall or o2-small, not $opt" >&2; exit 1 ;;
esac

cache=${CAMTLS_CACHE:-$HOME/.cache/camtls}
tree=$cache/opt-tree-$opt
rm -rf "$tree"
mkdir -p "$tree"
(cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$tree")
FLAGS=$flags perl -pi -e 's/-Os -flto \$small /$ENV{FLAGS} / and $n++;
  END { $n == 1 or die "$ARGV: OpenSSL flags not found\n" }' "$tree/mk/openssl.sh"
case $out in /*) ;; *) out=$PWD/$out ;; esac
"$tree/mk/cross-build.sh" "$triple" "$out"
