#!/usr/bin/env bash
# Builds (once) a Debian bookworm rootfs with debootstrap for the heavier
# tests, cached outside the repo, and prints its path.
# Usage: tests/scripts/debian-rootfs.sh [CACHE_DIR]   (default /var/cache/cordon)
set -euo pipefail
cache=${1:-${CORDON_CACHE:-/var/cache/cordon}}
dir="$cache/debian-bookworm"
pkgs=python3,perl,procps,coreutils,findutils,grep,sed,gawk,bash,tar,gzip,sqlite3,libpython3-stdlib
stamp="$dir.$(echo "$pkgs" | md5sum | cut -c1-8).complete"
if [[ -d $dir && -f $stamp ]]; then echo "$dir"; exit 0; fi
command -v debootstrap >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
mirror=${CORDON_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
tmp="$dir.tmp.$$"
rm -rf "$tmp"
echo "debian-rootfs: debootstrap bookworm into $tmp (from $mirror)" >&2
debootstrap --variant=minbase --include="$pkgs" bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
  tail -20 "$cache/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
rm -rf "$dir" "$dir".*.complete
mv "$tmp" "$dir"
touch "$stamp"
echo "$dir"
