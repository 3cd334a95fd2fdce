# Sourced by fanout.sh and relay.sh: sites of real bdrd processes on
# loopback under a scratch directory that goes away on exit.
#   sites_init NAME CORPUS_DIR   sets bin, src (CORPUS_DIR/v2), work, pids
bench_die() { echo "$BENCH_NAME: $*" >&2; exit 2; }
sites_init() {
  BENCH_NAME=$1
  bin=${BDR_BUILD:-$PWD/build}
  src=$2/v2
  [[ -d $src ]] || bench_die "no $src (fetch the corpora: bench/corpora/fetch.sh)"
  work=$(mktemp -d "/var/tmp/bdr-$1.XXXXXX")
  pids=()
  trap sites_cleanup EXIT
}
sites_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
# free_port VAR: a port free now, and not given out before in this run
# (each probe closes before the next, so the kernel may offer one twice).
# Sets VAR rather than printing it: a $(...) subshell would forget the
# ports already taken.
ports_taken=" "
free_port() {
  local fp_
  while :; do
    fp_=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    [[ $ports_taken == *" $fp_ "* ]] || break
  done
  ports_taken+="$fp_ "
  printf -v "$1" '%s' "$fp_"
}
# A key pair for site NAME in $work/NAME/key; prints its public key.
site_key() { "$bin/src/ctl/bdrctl" keygen -o "$work/$1/key" >/dev/null 2>&1; "$bin/src/ctl/bdrctl" pubkey -k "$work/$1/key"; }
