#!/bin/bash
# Checks the static router binaries that `make release` ships, each natively
# (x86_64) or under its qemu-user emulator.
#
#   tests/emulated/run.sh [--quick] dist/camtls-VERSION-TRIPLE...
#
# Every binary, always (the release build's own check, --quick):
#   - it is fully static (no interpreter, no shared library) and within
#     SIZE_BUDGET bytes;
#   - `--version` runs and prints the version;
#   - tests/tls_algorithms.rs passes against it: a handshake per suite,
#     group, signature scheme and certificate kind of the TLS policy, and
#     resumed TLS 1.2 and 1.3 sessions, so a trimmed OpenSSL that lost
#     something the policy offers fails the build.
# Without --quick, the Rust integration suites (which run the binary named
# by CAMTLS_BIN under the prefix CAMTLS_RUNNER) then run against it, the
# proxy native or emulated on 127.0.0.1, clients and backends native. Which
# suites run for which target is `suites_for` below; docs/building.md has
# the table. Binaries are checked JOBS at a time (default: the core count),
# each one's lines printed together when it is done.
set -u

quick=
if [ "${1:-}" = --quick ]; then
	quick=1
	shift
fi
budget=${SIZE_BUDGET:-2621440}
jobs=${JOBS:-$(nproc)}
cd "$(dirname "$0")/../.." || exit 1

# Every suite that drives the binary: all of tests/*.rs.
all_suites=$(for f in tests/*.rs; do basename "$f" .rs; done | grep -vx tls_algorithms | tr '\n' ' ')

suites_for() { # TRIPLE: the suites its binary must pass besides tls_algorithms
	case $1 in
	x86_64-*) echo "$all_suites" ;;
	# The router families: everything about serving and refusing.
	mips-* | mipsel-* | armv7-*) echo "e2e proxy tls_policy guard admission crash_inputs cli camera_zoo client_answers loop_never_waits exit_status" ;;
	aarch64-*) echo "e2e" ;;
	*) echo "" ;;
	esac
}

runner_for() { # TRIPLE: the qemu-user emulator, empty for the host's own
	case $1 in
	mipsel-*) echo qemu-mipsel-static ;;
	mips-*) echo qemu-mips-static ;;
	armv7-* | arm-*) echo qemu-arm-static ;;
	aarch64-*) echo qemu-aarch64-static ;;
	x86_64-*) ;;
	*) echo "unknown-target-$1" ;;
	esac
}

is_static() { # no PT_INTERP, no DT_NEEDED: nothing is loaded from the firmware
	readelf -lW "$1" | grep -q 'Requesting program interpreter' && {
		echo "$1 asks for a dynamic loader"
		return 1
	}
	readelf -dW "$1" | grep -q '(NEEDED)' && {
		echo "$1 needs shared libraries:"
		readelf -dW "$1" | grep '(NEEDED)'
		return 1
	}
	return 0
}

within_budget() {
	size=$(stat -L -c %s "$1")
	echo "$size bytes, budget $budget"
	[ "$size" -le "$budget" ]
}

prints_version() { # BIN RUNNER VERSION
	# shellcheck disable=SC2086 # the runner is empty for the host's binary
	got=$($2 "$1" --version)
	echo "$got"
	[ "$got" = "camtls $3" ]
}

suite() { # BIN RUNNER SUITE
	CAMTLS_BIN=$1 CAMTLS_RUNNER=$2 cargo test --quiet --locked --test "$3"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One binary's checks; writes "ok"/"FAIL" lines to stdout and the counts to
# $work/TRIPLE.counts.
check_binary() { # BIN
	bin=$1
	base=${bin##*/}
	rest=${base#camtls-}
	version=${rest%%-*}
	triple=${rest#*-}
	runner=$(runner_for "$triple")
	passed=0
	failed=0
	check() { # NAME COMMAND...: one line per check
		name=$1
		shift
		started=$(date +%s)
		if out=$("$@" 2>&1); then
			passed=$((passed + 1))
			last=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
			echo "ok   $name${last:+ ($last)} [$(($(date +%s) - started))s]"
		else
			failed=$((failed + 1))
			echo "FAIL $name [$(($(date +%s) - started))s]"
			printf '%s\n' "$out" | tail -n 60 | sed 's/^/     /'
		fi
	}
	# Named camtls, as installed: usage and help text show the program name.
	mkdir -p "$work/$triple"
	ln -sf "$(realpath "$bin")" "$work/$triple/camtls"
	abs=$work/$triple/camtls
	on=${runner:+ under $runner}
	check "$triple: fully static" is_static "$abs"
	check "$triple: within the size budget" within_budget "$abs"
	check "$triple: --version$on" prints_version "$abs" "$runner" "$version"
	check "$triple: tests/tls_algorithms.rs$on" suite "$abs" "$runner" tls_algorithms
	if [ -z "$quick" ]; then
		for s in $(suites_for "$triple"); do
			check "$triple: tests/$s.rs$on" suite "$abs" "$runner" "$s"
		done
	fi
	echo "$passed $failed" >"$work/$triple.counts"
}

# The suites are compiled once, before binaries are checked side by side.
cargo test --quiet --locked --no-run >"$work/build.log" 2>&1 || {
	cat "$work/build.log"
	echo "0 passed, 1 failed"
	exit 1
}

running=0
for bin in "$@"; do
	base=${bin##*/}
	(check_binary "$bin" >"$work/$base.log" 2>&1) &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n 2>/dev/null || wait
		running=$((running - 1))
	fi
done
wait

passed=0
failed=0
for bin in "$@"; do
	base=${bin##*/}
	cat "$work/$base.log"
	rest=${base#camtls-}
	triple=${rest#*-}
	if [ -f "$work/$triple.counts" ]; then
		read -r p f <"$work/$triple.counts"
	else
		p=0 f=1
		echo "FAIL $triple: the checks did not finish"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
