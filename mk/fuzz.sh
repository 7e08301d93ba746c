#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after the
# other, and fails when any of them finds a crash, a hang or a broken
# property. Prints one line per target and ends with "N passed, M failed".
#
#   mk/fuzz.sh SECONDS [TARGET...]
#
# libFuzzer through cargo-fuzz, on nightly, with AddressSanitizer. Each target
# reads fuzz/seeds/TARGET and fuzz/regressions/TARGET and grows its working
# corpus in fuzz/corpus/TARGET (not in git). A crash input is written to
# fuzz/artifacts/TARGET/ and named below; once fixed, move it to
# fuzz/regressions/TARGET/, where `cargo test` runs it from then on.
#
# FUZZ_TARGET_DIR (default ~/.cache/camtls/fuzz-target) is the cargo target
# directory, outside the clone, so that a warm run only rebuilds what changed.
set -euo pipefail

seconds=${1:?usage: mk/fuzz.sh SECONDS [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
target_dir=${FUZZ_TARGET_DIR:-${CAMTLS_CACHE:-$HOME/.cache/camtls}/fuzz-target}
# This run's logs, apart from any other run on the machine; kept only when
# something failed.
mkdir -p "$target_dir"
logs=$(mktemp -d "$target_dir/logs.XXXXXX")

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets (nightly, cargo-fuzz, AddressSanitizer) in $target_dir"
if ! cargo +nightly fuzz build --target-dir "$target_dir" >"$logs/build.log" 2>&1; then
  tail -n 40 "$logs/build.log"
  echo "fuzz: the fuzz targets did not build; log $logs/build.log"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

# Longest input tried: room for a whole head (head::MAX_HEAD_BYTES) where the
# target reads heads; short for one-line inputs, where length buys nothing.
max_len() {
  case $1 in
    heads | locations | targets) echo 17000 ;;
    chunked) echo 8192 ;;
    *) echo 1200 ;;
  esac
}

passed=0
failed=0
for t in "${targets[@]}"; do
  corpus=(fuzz/corpus/"$t")
  for extra in fuzz/seeds/"$t" fuzz/regressions/"$t"; do
    [ -d "$extra" ] && corpus+=("$extra")
  done
  mkdir -p fuzz/corpus/"$t" fuzz/artifacts/"$t"
  before=$(find fuzz/artifacts/"$t" -type f | sort)
  log=$logs/$t.log
  start=$(date +%s)
  rc=0
  cargo +nightly fuzz run --target-dir "$target_dir" "$t" "${corpus[@]}" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  new=$(comm -13 <(echo "$before") <(find fuzz/artifacts/"$t" -type f | sort) | sed '/^$/d')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  size=$(find fuzz/corpus/"$t" -type f | wc -l)
  if [ "$rc" = 0 ] && [ -z "$new" ]; then
    passed=$((passed + 1))
    echo "fuzz $t: ok, ${took} s, ${runs:-?} runs, corpus $size inputs"
  else
    failed=$((failed + 1))
    echo "fuzz $t: FAILED (exit $rc) after ${took} s, ${runs:-?} runs; log $log"
    # What broke: the panic or sanitizer report, and where.
    grep -m 6 -E "panicked at|^ERROR: |SUMMARY: |deadly signal|timeout after" "$log" | sed 's/^/  /' || true
    for f in $new; do
      echo "  crash input: $f"
      echo "  reproduce:   cargo +nightly fuzz run --target-dir $target_dir $t $f"
    done
  fi
done
if [ "$failed" = 0 ]; then
  rm -rf "$logs"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
