#!/bin/sh
# The configuration as installed must be one bdrd accepts once the package
# has made the site key (postinst; bdrd --check-config checks the key file
# it names): the shipped file, its key line pointing at a fresh key.
# usage: check-example-config.sh BDRD BDRCTL CONF
set -eu
bdrd=$1 bdrctl=$2 conf=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bdrctl" keygen -o "$tmp/site.key" >/dev/null
grep -q '^key = ' "$conf" || { echo "$conf: no 'key =' line" >&2; exit 1; }
sed "s|^key = .*|key = $tmp/site.key|" "$conf" >"$tmp/bdr.conf"
exec "$bdrd" --check-config -c "$tmp/bdr.conf"
