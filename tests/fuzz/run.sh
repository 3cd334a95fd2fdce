#!/usr/bin/env bash
# Builds every libFuzzer target with clang and runs each for SECONDS:
#   tests/fuzz/run.sh [BUILD_DIR [SECONDS]]
# A target named fuzz_X starts from the seeds in BUILD_DIR/tests/fuzz/X_seeds
# (generated at build time) and grows its corpus in BUILD_DIR/fuzz-corpus/X.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-fuzz}
secs=${2:-60}
[[ -f $dir/build.ninja ]] || CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false
ninja -C "$dir"
for exe in "$dir"/tests/fuzz/fuzz_*; do
  [[ -x $exe && -f $exe ]] || continue
  name=${exe##*/fuzz_}
  work=$dir/fuzz-corpus/$name
  mkdir -p "$work"
  seeds=()
  [[ -d $dir/tests/fuzz/${name}_seeds ]] && seeds=("$dir/tests/fuzz/${name}_seeds")
  echo "fuzz: $name for ${secs}s"
  "$exe" -max_total_time="$secs" -print_final_stats=1 "$work" "${seeds[@]}" 2>&1 | tail -n 12
  # libFuzzer exits non-zero on a crash; set -e and pipefail stop CI here.
done
