#!/usr/bin/env bash
# Make the two benchmark bundles from busybox-static:
#   integration/bench/mkbundle.sh DIR
# DIR/default: the config `runc spec` writes (namespaces pid, network, ipc,
#              uts, mount; read-only rootfs), no terminal, entrypoint /bin/true.
# DIR/userns:  the same plus a user namespace mapping container ids 0..65535
#              to host ids 100000..165535, its rootfs owned by host uid/gid
#              100000 (container root).
# Idempotent: a bundle is rebuilt only when its rootfs is missing or stale.
set -euo pipefail
dir=${1:?usage: mkbundle.sh DIR}
bb=/bin/busybox
here=$(cd "$(dirname "$0")" && pwd)
map_host=100000
map_size=65536

make_rootfs() { # make_rootfs ROOTFS OWNER
  local rootfs=$1 owner=$2
  if [ -x "$rootfs/bin/busybox" ] && cmp -s "$bb" "$rootfs/bin/busybox" \
     && [ "$(stat -c %u:%g "$rootfs/bin/busybox")" = "$owner" ]; then
    return 0
  fi
  rm -rf "$rootfs"
  mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root}
  chmod 1777 "$rootfs/tmp"
  cp "$bb" "$rootfs/bin/busybox"
  for applet in true sh; do ln -s busybox "$rootfs/bin/$applet"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  echo 'root:x:0:' > "$rootfs/etc/group"
  chown -R -h "$owner" "$rootfs"
}

make_config() { # make_config BUNDLE [userns]
  local bundle=$1 userns=${2:-}
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && runc spec)
  /usr/bin/python3 "$here/editspec.py" "$tmp/config.json" ${userns:+--userns $map_host $map_size} \
    > "$bundle/config.json.new"
  mv "$bundle/config.json.new" "$bundle/config.json"
  rm -rf "$tmp"
}

mkdir -p "$dir/default" "$dir/userns"
make_rootfs "$dir/default/rootfs" 0:0
make_config "$dir/default"
make_rootfs "$dir/userns/rootfs" "$map_host:$map_host"
make_config "$dir/userns" userns
echo "bundles ready: $dir/default $dir/userns"
