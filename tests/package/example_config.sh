#!/bin/sh
# The bdr.conf that meson installs, checked as bdrd checks it:
#   example_config.sh BDRD BDRCTL CONF
# Every line as written but "key =": the key file is not installed (the
# Debian package's postinst makes it, by hand it is bdrctl keygen) and
# --check-config checks it, so a new key stands in for it.
set -eu
d=$(mktemp -d "${TMPDIR:-/tmp}/bdr-example-config.XXXXXX")
trap 'rm -rf "$d"' EXIT
"$2" keygen -o "$d/site.key" >/dev/null 2>&1
grep -q '^key = /' "$3" || { echo "$3: no 'key = /...' line" >&2; exit 1; }
sed "s|^key = .*|key = $d/site.key|" "$3" >"$d/bdr.conf"
exec "$1" --check-config -c "$d/bdr.conf"
