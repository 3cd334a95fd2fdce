#!/usr/bin/env bash
# The quick start's demo: installs what bdr needs (as root), builds it,
# fetches a real release pair (typescript 5.9.2 -> 5.9.3 by default) and
# replicates it between two sites on this machine: two bdrd processes with
# their own keys, configurations and libraries, talking over an encrypted
# TCP connection on loopback. It pushes v1, then v2, and prints the bytes on
# the wire and the bytes saved, next to rsync (daemon mode over TCP, with
# and without -z) bringing a copy of v1 to v2 in the same run.
#   sudo bash bench/demo.sh [CORPUS_NAME]     (typescript, esbuild, lodash, synthetic)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-typescript}
bash .ci/deps.sh
[[ -f build/build.ninja ]] || meson setup build >/dev/null
ninja -C build >/dev/null
export BDR_CORPORA=${BDR_CORPORA:-/var/tmp/bdr-corpora}
DATA=$BDR_CORPORA bash bench/corpora/fetch.sh "$corpus" >/dev/null
src=$BDR_CORPORA/$corpus
bin=$PWD/build
work=$(mktemp -d /var/tmp/bdr-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
echo "demo: two sites under $work, corpus $corpus"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_hq=$(free_port); port_br=$(free_port); port_rs=$(free_port)
for s in hq branch; do
  mkdir -p "$work/$s/data"
  "$bin/src/ctl/bdrctl" keygen -o "$work/$s/key" 2>/dev/null >/dev/null
done
site_conf() { # NAME PORT PEER PEER_KEY [PEER_ADDRESS]
  printf '[site]\nname = %s\nlisten = 127.0.0.1:%s\nkey = %s\ndata = %s\ncontrol = %s\n\n[peer %s]\npublic_key = %s\n' \
    "$1" "$2" "$work/$1/key" "$work/$1/data" "$work/$1/control.sock" "$3" "$4"
  [[ -n ${5:-} ]] && printf 'address = %s\n' "$5"
  return 0
}
site_conf hq "$port_hq" branch "$("$bin/src/ctl/bdrctl" pubkey -k "$work/branch/key")" "127.0.0.1:$port_br" >"$work/hq/bdr.conf"
site_conf branch "$port_br" hq "$("$bin/src/ctl/bdrctl" pubkey -k "$work/hq/key")" >"$work/branch/bdr.conf"
for s in hq branch; do
  "$bin/src/daemon/bdrd" -c "$work/$s/bdr.conf" 2>"$work/$s/log" &
  pids+=($!)
done
ctl() { "$bin/src/ctl/bdrctl" -s "$work/hq/control.sock" "$@"; }
for _ in $(seq 100); do ctl peers >/dev/null 2>&1 && break; sleep 0.05; done

wire() { # TRANSFER-ID -> bytes_sent
  ctl --json status | python3 -c "import json,sys; t=[x for x in json.load(sys.stdin)['transfers'] if x['transfer']==$1][0]; print(t['bytes_sent'], t['bytes_saved'])"
}
# The last JSON object of a stream (events are lines, the result may span several).
lastobj='import json,sys
s=sys.stdin.read(); d=json.JSONDecoder(); i=0; o=None
while i < len(s):
    if s[i].isspace(): i += 1; continue
    o, i = d.raw_decode(s, i)
print(o["transfer"])'
push() { # DIR -> "transfer seconds"
  local t0 t1 id
  t0=$(date +%s.%N)
  id=$(ctl --json push "$corpus" "$1" --to branch --wait | python3 -c "$lastobj")
  t1=$(date +%s.%N)
  echo "$id $(python3 -c "print(f'{$t1-$t0:.2f}')")"
}
read -r id1 s1 < <(push "$src/v1")
read -r id2 s2 < <(push "$src/v2")
read -r w1 _ < <(wire "$id1")
read -r w2 saved2 < <(wire "$id2")
diff -r --no-dereference "$src/v2" "$work/branch/data/packages/$corpus/current/tree" >/dev/null && same=yes || same=NO

# rsync in daemon mode over TCP: a copy of v1 brought to v2.
mkdir -p "$work/rsync"
printf 'port = %s\naddress = 127.0.0.1\nuse chroot = no\nuid = %s\ngid = %s\n[dst]\npath = %s/rsync/dst\nread only = no\n' "$port_rs" "$(id -un)" "$(id -gn)" "$work" >"$work/rsync/rsyncd.conf"
rsync --daemon --no-detach --config="$work/rsync/rsyncd.conf" &
pids+=($!)
for _ in $(seq 100); do rsync "rsync://127.0.0.1:$port_rs/" >/dev/null 2>&1 && break; sleep 0.05; done
rs() { # OPTIONS... -> "wire-bytes seconds"
  rm -rf "$work/rsync/dst" && cp -a "$src/v1" "$work/rsync/dst"
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(rsync -a --delete --stats "$@" "$src/v2/" "rsync://127.0.0.1:$port_rs/dst/")
  t1=$(date +%s.%N)
  python3 -c "
import re,sys
s=sys.argv[1]
b=lambda k: int(re.search(k+r': ([\d,]+)', s).group(1).replace(',',''))
print(b('Total bytes sent')+b('Total bytes received'), f'{$t1-$t0:.2f}')" "$out"
}
read -r r0 rt0 < <(rs)
read -r rz rtz < <(rs -z)

v2size=$(du -sb "$src/v2" | cut -f1)
cat <<EOF

corpus $corpus: v2 is $v2size bytes; destination bit-exact after the delta push: $same

                                    wire bytes    wall s
bdr  first push (empty destination) $(printf '%12s' "$w1")  $(printf '%8s' "$s1")
bdr  v1 -> v2                       $(printf '%12s' "$w2")  $(printf '%8s' "$s2")   ($saved2 bytes of v2 not sent)
rsync v1 -> v2                      $(printf '%12s' "$r0")  $(printf '%8s' "$rt0")
rsync -z v1 -> v2                   $(printf '%12s' "$rz")  $(printf '%8s' "$rtz")

bdr's wire bytes count what the sending bdrd wrote (handshake, manifest,
chunks); rsync's are its --stats totals of both directions. The sites' logs:
$work/hq/log and $work/branch/log.
EOF
[[ $same == yes ]]
