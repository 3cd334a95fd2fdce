#!/usr/bin/env bash
# Relay: how long the middle hop of a tree adds. central pushes one version
# to region, which relays it to dp once it has verified and activated it
# (bdr.conf(5), HIERARCHY). Prints when each site activated it, from the
# push's start; the region -> dp share of the total is the most that
# forwarding chunks while they still arrive could save on this path.
# Every daemon is a real bdrd on loopback.
#   bash bench/relay.sh [CORPUS_DIR]     (default: typescript v2)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/sites.sh
corpus=${1:-${BDR_CORPORA:-/var/tmp/bdr-corpora}/typescript}
sites_init relay "$corpus"
declare -A pk port
for s in central region dp; do
  mkdir -p "$work/$s/data"
  pk[$s]=$(site_key "$s")
  free_port p; port[$s]=$p
done
conf() { # NAME ROLE
  printf '[site]\nname = %s\nrole = %s\nlisten = 127.0.0.1:%s\nkey = %s\ndata = %s\ncontrol = %s\n' \
    "$1" "$2" "${port[$1]}" "$work/$1/key" "$work/$1/data" "$work/$1/control.sock"
}
peer() { # NAME RELATION [ADDRESS]
  printf '\n[peer %s]\npublic_key = %s\nrelation = %s\n' "$1" "${pk[$1]}" "$2"
  [[ $# -lt 3 ]] || printf 'address = 127.0.0.1:%s\n' "${port[$1]}"
}
{ conf central site; peer region child addr; } >"$work/central/bdr.conf"
{ conf region site; peer central parent addr; peer dp child addr; } >"$work/region/bdr.conf"
{ conf dp dp; peer region parent; } >"$work/dp/bdr.conf"
for s in central region dp; do
  "$bin/src/daemon/bdrd" -c "$work/$s/bdr.conf" 2>"$work/$s/log" &
  pids+=($!)
done
ctl() { "$bin/src/ctl/bdrctl" -s "$work/$1/control.sock" "${@:2}"; }
for s in central region dp; do
  for _ in $(seq 200); do ctl "$s" peers >/dev/null 2>&1 && break; sleep 0.05; done
done
has() { [[ -L $work/$1/data/packages/app/current ]]; }
t0=$(date +%s.%N)
ctl central push app "$src" --to region >/dev/null
t_region= t_dp=
for _ in $(seq 12000); do
  now=$(date +%s.%N)
  [[ -n $t_region ]] || ! has region || t_region=$now
  [[ -n $t_dp ]] || ! has dp || t_dp=$now
  [[ -z $t_region || -z $t_dp ]] || break
  sleep 0.005
done
[[ -n $t_region && -n $t_dp ]] || { echo "relay: dp did not activate within 60 s" >&2; exit 1; }
ok=yes
for s in region dp; do
  diff -r --no-dereference "$src" "$work/$s/data/packages/app/current/tree" >/dev/null || ok=NO
done
python3 - "$t0" "$t_region" "$t_dp" "$(basename "$corpus")" "$ok" <<'PY'
import sys
t0, tr, td = map(float, sys.argv[1:4])
print(f"relay of {sys.argv[4]} v2, first push, loopback: central -> region -> dp")
print(f"  region activated at {tr - t0:.2f} s, dp at {td - t0:.2f} s")
print(f"  the middle hop adds {td - tr:.2f} s, {100 * (td - tr) / (td - t0):.0f}% of the total; both trees bit-exact: {sys.argv[5]}")
PY
[[ $ok == yes ]]
