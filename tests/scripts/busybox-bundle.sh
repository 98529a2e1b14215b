#!/usr/bin/env bash
# Builds an OCI bundle whose rootfs is Debian's static busybox.
# Usage: tests/scripts/busybox-bundle.sh DIR [ARGS...]   (default args: the demo)
set -euo pipefail
dir=${1:?usage: busybox-bundle.sh DIR [ARGS...]}; shift
rm -rf "$dir"; mkdir -p "$dir/rootfs"/{bin,etc,tmp,root,data}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
  [[ $a == busybox ]] || ln -sf busybox "$dir/rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/rootfs/etc/group"
echo "Cordon demo" >"$dir/rootfs/data/motd"
if (($# == 0)); then
  # Builtins only until fork arrives with the processes work.
  set -- /bin/sh -c 'echo "Hello from the Cordon sandbox"; read -r m </data/motd; echo "motd: $m"
    i=0; while [ $i -lt 3 ]; do i=$((i+1)); echo "count $i"; done'
fi
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
spec = {
    "ociVersion": "1.0.2",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/"},
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "cordon",
    "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]},
}
json.dump(spec, open(path, "w"), indent=2)
PY
