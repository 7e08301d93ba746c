#!/bin/bash
# The system call census of the Tomato binaries: each one runs the
# end-to-end suite (tests/e2e.rs) under qemu-user -strace, with uname
# reporting its router's kernel and, under tests/tomato/enosys.c, every x86_64
# call newer than that kernel refused, so the calls qemu makes for the guest
# are refused as the router would refuse the guest's. tests/census/census.py
# then checks every call and flag made against the architecture's table at
# the floor (MIPS o32 at 2.6.22, ARM EABI at 2.6.36; tests/census/*.txt name
# their sources): a call or flag that is not there needs a fallback listed in
# tests/census/fallbacks.txt, with what shows that it works.
#
#   tests/census/run.sh BINARY...   (the mipsel and the armv7 soft-float build)
#
# The census of each binary is left in target/census/ARCH-FLOOR.txt.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

shellcheck tests/census/run.sh tests/census/clock-reads.sh || exit 1
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' tests/census/census.py || exit 1
enosys=$repo/target/tomato/enosys
mkdir -p "$repo/target/tomato" "$repo/target/census"
gcc -O2 -Wall -Wextra -Werror -o "$enosys" tests/tomato/enosys.c || exit 1
cargo test --quiet --locked --no-run --test e2e >/dev/null 2>&1 || {
	cargo test --locked --no-run --test e2e
	exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

census() { # BINARY: prints its lines, writes $work/NAME.rc
	local bin name arch floor qemu release allow=
	bin=$(realpath "$1")
	name=${bin##*/}
	case $name in
	*-mipsel-* | *-mips-*)
		arch=mips-o32 floor=2.6.22 release=2.6.22.19
		qemu="qemu-mipsel-static"
		[[ $name == *-mips-* ]] && qemu="qemu-mips-static"
		# qemu makes the guest's pipe and accept with the host's pipe2 and
		# accept4, both newer than 2.6.22: those host calls must answer.
		allow="--allow 293 --allow 288" ;;
	*-armv7-*)
		arch=arm-eabi floor=2.6.36 release=2.6.36.4brcmarm qemu=qemu-arm-static ;;
	*)
		echo "FAIL $name: no census for this target"
		echo 1 >"$work/$name.rc"
		return ;;
	esac
	local traces=$work/$name.traces started=$SECONDS
	mkdir -p "$traces"
	# shellcheck disable=SC2086 # $allow is a list of words
	if ! CAMTLS_BIN=$bin CAMTLS_RUNNER="$enosys --floor $floor $allow -- $qemu -r $release -strace -D $traces/%d" \
		cargo test --quiet --locked --test e2e >"$work/$name.log" 2>&1; then
		echo "FAIL $name: tests/e2e.rs under $qemu -strace on the $floor floor"
		tail -n 30 "$work/$name.log" | sed 's/^/  | /'
		echo 1 >"$work/$name.rc"
		return
	fi
	echo "ok   $name: tests/e2e.rs under $qemu -r $release -strace on the $floor floor [$((SECONDS - started))s]"
	python3 tests/census/census.py --arch "$arch" --floor "$floor" \
		--table "tests/census/$arch-$floor.txt" --fallbacks tests/census/fallbacks.txt \
		--flags tests/census/flags.txt --report "target/census/$arch-$floor.txt" "$traces"/*
	echo $? >"$work/$name.rc"
}

for bin in "$@"; do
	(census "$bin" >"$work/${bin##*/}.out" 2>&1) &
done
wait
failed=0
for bin in "$@"; do
	cat "$work/${bin##*/}.out"
	[ "$(cat "$work/${bin##*/}.rc" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
done
echo "census: $# binaries, $failed failed"
[ "$failed" = 0 ]
