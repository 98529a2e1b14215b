#!/usr/bin/env bash
# Installs what building and testing Cordon needs on Debian, only if missing.
# Usage: tests/scripts/setup-deps.sh [--bench]
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have gcc || need+=(gcc libc6-dev)
[[ -e /usr/include/stdio.h ]] || need+=(libc6-dev)
# The busybox bundle needs Debian's static busybox (no PT_INTERP).
if ! { [[ -x /bin/busybox ]] && ! readelf -l /bin/busybox 2>/dev/null | grep -q INTERP; }; then
  need+=(busybox-static)
fi
have readelf || need+=(binutils)
have python3 || need+=(python3)
# The Debian tests compare cordon against runc on the same bundle; gVisor's
# runsc is the benchmarks' comparison and, being a static Go binary, the
# tests' Go program.
have runc || need+=(runc)
have runsc || need+=(runsc)
# The containerd tests run containers through a private containerd
# (tests/containerd/containerd-harness.sh) with runc's shim and ctr.
have containerd || need+=(containerd)
have ctr || need+=(containerd)
# The terminal tests play a person typing with tmux, and give ctr a
# terminal with script(1).
have tmux || need+=(tmux)
have script || need+=(bsdutils)
if ((${#need[@]})); then
  [[ $(id -u) == 0 ]] || { echo "setup-deps: need root to install: ${need[*]}" >&2; exit 1; }
  echo "setup-deps: apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! have cargo; then
  [[ -x $HOME/.cargo/bin/cargo ]] && exit 0
  echo "setup-deps: cargo not found; installing Debian's cargo (a rustup toolchain is better)" >&2
  apt-get install -y -qq --no-install-recommends cargo >/dev/null
fi
