#!/bin/bash
# Counts the clock system calls of one fixed sequence: camtls started under
# qemu-user with uname reporting the router's kernel, 10 HTTPS requests
# proxied to a local HTTP server one after another, then SIGTERM.
#
#   tests/census/clock-reads.sh BINARY    (a mipsel or armv7 static build)
#
# Prints the count of each clock call (clock_gettime64, clock_gettime,
# gettimeofday, time). qemu answers clock_gettime64 itself; on a kernel
# before 5.1 each of those is refused and musl makes clock_gettime next.
set -euo pipefail
bin=$(realpath "$1")
case ${bin##*/} in
*mipsel-*) qemu=qemu-mipsel-static release=2.6.22.19 ;;
*mips-*) qemu=qemu-mips-static release=2.6.22.19 ;;
*armv7-*) qemu=qemu-arm-static release=2.6.36.4brcmarm ;;
*) echo "usage: $0 BINARY (mips, mipsel or armv7)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'kill $http $proxy 2>/dev/null; rm -rf "$work"' EXIT
http='' proxy=''
echo hello >"$work/index.html"
port=$((20000 + RANDOM % 20000))
python3 -m http.server "$((port + 1))" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
http=$!
"$qemu" "$bin" gen-cert --cert "$work/c.pem" --key "$work/k.pem" >/dev/null 2>&1
"$qemu" -r "$release" -strace -D "$work/trace" "$bin" --route "127.0.0.1:$port=127.0.0.1:$((port + 1))" \
	--cert "$work/c.pem" --key "$work/k.pem" 2>/dev/null &
proxy=$!
for _ in $(seq 100); do
	curl -sk -o /dev/null "https://127.0.0.1:$port/" && break
	sleep 0.1
done
start=$(wc -l <"$work/trace")
for _ in $(seq 10); do
	curl -sk -o /dev/null --fail "https://127.0.0.1:$port/index.html"
done
kill -TERM "$proxy"
wait "$proxy" 2>/dev/null || true
proxy=
echo "$qemu -r $release: ${bin##*/}, start, 10 proxied requests, SIGTERM"
for call in clock_gettime64 clock_gettime gettimeofday time; do
	printf '%-16s %5d (%d during the 10 requests)\n' "$call" \
		"$(grep -Ec "^[0-9]+ $call\(" "$work/trace" || true)" \
		"$(tail -n +"$start" "$work/trace" | grep -Ec "^[0-9]+ $call\(" || true)"
done
