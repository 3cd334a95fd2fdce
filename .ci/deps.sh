#!/usr/bin/env bash
# Installs what bdr needs to build, test, fuzz, package and demo on Debian 12
# (the package test needs dpkg-dev, debhelper, lintian, and systemd for
# systemd-analyze and systemd-sysusers; systemd need not run as PID 1).
# Shared by .ci/run and bench/demo.sh. Needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential meson ninja-build pkg-config python3
  libuv1-dev libxxhash-dev libsodium-dev libsqlite3-dev zlib1g-dev
  libinih-dev libsystemd-dev libjansson-dev scdoc
  libcriterion-dev clang libclang-rt-14-dev
  rsync iproute2 gnuplot-nox libzstd-dev
  dpkg-dev debhelper lintian systemd adduser
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# npm fetches the real-release corpora; a machine may already have its own.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing packages ${missing[*]}; run as root (sudo) to install them" >&2
    exit 1
  fi
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
