#!/usr/bin/env bash
# The quick start's demo: installs what bdr needs (as root), builds it,
# fetches a real release pair (typescript 5.9.2 -> 5.9.3) and replicates it
# from a central site's library to a branch site's library through the
# content core: only the chunks the branch lacks travel.
#   sudo bash bench/demo.sh [CORPUS_NAME]     (typescript, esbuild, lodash, synthetic)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-typescript}
bash .ci/deps.sh
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null
export BDR_CORPORA=${BDR_CORPORA:-/var/tmp/bdr-corpora}
DATA=$BDR_CORPORA bash bench/corpora/fetch.sh "$corpus"
work=$(mktemp -d /var/tmp/bdr-demo.XXXXXX)
echo "demo: sites' data directories under $work"
build/bench/bdr-coredemo "$BDR_CORPORA/$corpus" "$work"
