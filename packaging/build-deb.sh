#!/usr/bin/env bash
# Builds the Debian package from this tree:
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: build-deb)
# dpkg-buildpackage wants debian/ at the root of the source. Rather than
# keep one there (or a symlink to packaging/debian) and build in the tree,
# where it leaves obj-*/, debian/.debhelper and debian/bdr/ among the
# sources, this copies the tree's files (git's tracked and untracked ones,
# ignoring what .gitignore ignores) into a temporary directory with
# packaging/debian as debian/, builds the binary package there and moves
# bdr_*.deb and its .buildinfo and .changes to OUTDIR. DEB_BUILD_OPTIONS
# passes through: "nocheck parallel=2" skips the tests and builds with two
# jobs. Needs dpkg-dev, debhelper and the Build-Depends of debian/control.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-build-deb}" && cd "${1:-build-deb}" && pwd)
version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/bdr-deb.XXXXXX")
# mktemp's 0700 would stop the tests that connect to a socket as another
# user (test_control's denied peer) before they reach the socket
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
src=$work/bdr-${version%-*}
mkdir "$src"

cd "$top"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # files deleted from the work tree but not from the index are skipped
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      [[ -e $f || -L $f ]] && printf '%s\0' "$f"
    done | tar --null -T - -cf - | tar -xf - -C "$src"
else
  tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -a packaging/debian "$src/debian"

(cd "$src" && dpkg-buildpackage -us -uc -b)
shopt -s nullglob
built=("$work"/*.deb "$work"/*.buildinfo "$work"/*.changes)
mv -f "${built[@]}" "$out/"
printf 'built %s\n' "$out"/*.deb
