#!/bin/sh
# Checks static router binaries, each under its qemu-user emulator.
#
#   tests/emulated/run.sh [--quick] dist/camtls-VERSION-TRIPLE...
#
# For every binary: it is fully static (no interpreter, no shared library),
# within SIZE_BUDGET bytes, and `--version` runs under emulation and prints
# the version. Without --quick, the Rust integration suites that honour
# CAMTLS_BIN/CAMTLS_RUNNER (TEST_SUITES, default "e2e cli") then run against
# it: the proxy emulated on 127.0.0.1, clients and backends native.
set -u

quick=
if [ "${1:-}" = --quick ]; then
	quick=1
	shift
fi
budget=${SIZE_BUDGET:-2621440}
suites=${TEST_SUITES:-e2e cli}
cd "$(dirname "$0")/../.." || exit 1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
check() { # NAME COMMAND...: one line per check
	name=$1
	shift
	if out=$("$@" 2>&1); then
		passed=$((passed + 1))
		last=$(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)
		echo "ok   $name${last:+ ($last)}"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		printf '%s\n' "$out" | tail -n 40 | sed 's/^/     /'
	fi
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

# Tests left out under emulation, per suite: SKIP_cli="name ...". None now:
# tests that meet the C library's own error wording match only its prefix.

suite() { # BIN RUNNER SUITE
	skips=
	for t in $(eval "echo \${SKIP_$3:-}"); do
		skips="$skips --skip $t"
	done
	# shellcheck disable=SC2086 # word lists
	CAMTLS_BIN=$1 CAMTLS_RUNNER=$2 cargo test --quiet --test "$3" -- $skips
}

for bin in "$@"; do
	base=${bin##*/}
	rest=${base#camtls-}
	version=${rest%%-*}
	triple=${rest#*-}
	runner=$(runner_for "$triple")
	# Named camtls, as installed: usage and help text show the program name.
	mkdir -p "$work/$triple"
	ln -sf "$(realpath "$bin")" "$work/$triple/camtls"
	abs=$work/$triple/camtls
	check "$triple: fully static" is_static "$abs"
	check "$triple: within the size budget" within_budget "$abs"
	check "$triple: --version${runner:+ under $runner}" prints_version "$abs" "$runner" "$version"
	[ -n "$quick" ] && continue
	for s in $suites; do
		for t in $(eval "echo \${SKIP_$s:-}"); do
			echo "skip $triple: tests/$s.rs $t (host wording)"
		done
		check "$triple: tests/$s.rs${runner:+ under $runner}" suite "$abs" "$runner" "$s"
	done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
