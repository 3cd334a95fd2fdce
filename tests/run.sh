#!/usr/bin/env bash
# The test command: tests/run.sh [BUILD_DIR [MESON_SETUP_OPTIONS...]]
# Builds (configuring BUILD_DIR if needed) and runs every suite. Set
# BDR_CORPORA to a directory filled by bench/corpora/fetch.sh to include the
# real-corpus tests (they skip, saying so, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
[[ -f $dir/build.ninja ]] || meson setup "$dir" "$@"
ninja -C "$dir"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
meson test -C "$dir" --print-errorlogs --num-processes 2
