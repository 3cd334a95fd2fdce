#!/usr/bin/env bash
# Fan-out: the sender's CPU time for one version pushed to N receiving
# daemons at once, against the same push to one. Every daemon is a real
# bdrd process on loopback; the sender's CPU is read from /proc (user +
# system, all threads) around each push, the import excluded (the version
# is imported by a first push to a spare site). The fan-out seals each chunk
# once and sends it to every site as a shared tail (proto/wire.md); the
# script prints how many of each, from bdrctl status.
#   bash bench/fanout.sh [CORPUS_DIR] [N] [RUNS]   (typescript v2, 20, 5)
# Each run starts fresh daemons; the summary gives the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/sites.sh
corpus=${1:-${BDR_CORPORA:-/var/tmp/bdr-corpora}/typescript}
n=${2:-20}
runs=${3:-5}
if ((runs > 1)); then
  for r in $(seq "$runs"); do
    bash "$0" "$corpus" "$n" 1 | tee /dev/stderr | sed -n 's/^  result: //p'
  done | python3 -c '
import statistics as st, sys
rows = [list(map(float, l.split())) for l in sys.stdin]
med = lambda i: st.median(r[i] for r in rows)
print("median of %d runs: sender CPU %.2f s to 1 site, %.2f s to %d sites; CPU ratio %.2fx "
      "(runs: %s)" % (len(rows), med(0), med(1), int(rows[0][3]), med(2),
                      ", ".join("%.2fx" % r[2] for r in rows)))'
  exit
fi
sites_init fanout "$corpus"
site_head() { # NAME PORT
  printf '[site]\nname = %s\nlisten = 127.0.0.1:%s\nkey = %s\ndata = %s\ncontrol = %s\n' \
    "$1" "$2" "$work/$1/key" "$work/$1/data" "$work/$1/control.sock"
}
sites=(spare)
for i in $(seq $((n + 1))); do sites+=("r$i"); done
mkdir -p "$work/hq/data"
hq_pk=$(site_key hq)
free_port hq_port
{ site_head hq "$hq_port"; printf '\n[limits]\nmax_transfers = %d\nmax_connections = %d\n' \
    $((n + 2)) $((2 * n + 8)); } >"$work/hq/bdr.conf"
for s in "${sites[@]}"; do
  mkdir -p "$work/$s/data"
  pk=$(site_key "$s"); free_port port
  { site_head "$s" "$port"; printf '\n[peer hq]\npublic_key = %s\n' "$hq_pk"; } >"$work/$s/bdr.conf"
  printf '\n[peer %s]\npublic_key = %s\naddress = 127.0.0.1:%s\n' "$s" "$pk" "$port" >>"$work/hq/bdr.conf"
done
for s in hq "${sites[@]}"; do
  "$bin/src/daemon/bdrd" -c "$work/$s/bdr.conf" 2>"$work/$s/log" &
  pids+=($!)
done
hq_pid=${pids[0]}
ctl() { "$bin/src/ctl/bdrctl" -s "$work/hq/control.sock" "$@"; }
for s in hq "${sites[@]}"; do
  for _ in $(seq 200); do "$bin/src/ctl/bdrctl" -s "$work/$s/control.sock" peers >/dev/null 2>&1 && break; sleep 0.05; done
done
cpu() { awk '{print $14 + $15}' "/proc/$hq_pid/stat"; }
hz=$(getconf CLK_TCK)
ctl push app "$src" --to spare --wait >/dev/null
measure() { # DESTS -> "cpu_s wall_s"
  local c0 c1 t0 t1
  c0=$(cpu); t0=$(date +%s.%N)
  ctl distribute app --to "$1" --wait >/dev/null
  t1=$(date +%s.%N); c1=$(cpu)
  python3 -c "print(f'{($c1-$c0)/$hz:.2f} {$t1-$t0:.2f}')"
}
read -r one_cpu one_wall < <(measure r1)
many=$(printf 'r%d,' $(seq 2 $((n + 1)))); many=${many%,}
read -r many_cpu many_wall < <(measure "$many")
read -r sealed sent < <(ctl --json status | python3 -c \
  'import json,sys; f=json.load(sys.stdin)["fanout"]; print(f["tails_sealed"], f["tails_sent"])')
ok=yes
for s in "${sites[@]}"; do
  diff -r --no-dereference "$src" "$work/$s/data/packages/app/current/tree" >/dev/null || ok=NO
done
v2=$(du -sb "$src" | cut -f1)
cat <<EOF
fan-out of $(basename "$corpus") v2 ($v2 bytes), initial push, loopback
  to 1 site:         sender CPU $one_cpu s, wall $one_wall s
  to $n sites at once: sender CPU $many_cpu s, wall $many_wall s
  CPU ratio: $(python3 -c "print(f'{$many_cpu/max($one_cpu,0.01):.2f}')")x for ${n}x the destinations; every tree bit-exact: $ok
  chunks sealed once: $sealed, sent as shared tails: $sent
  result: $one_cpu $many_cpu $(python3 -c "print(f'{$many_cpu/max($one_cpu,0.01):.4f}')") $n
EOF
[[ $ok == yes ]]
