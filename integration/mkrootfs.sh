#!/usr/bin/env bash
# Make a minimal root filesystem from the busybox-static package:
#   integration/mkrootfs.sh DIR
# DIR/bin/busybox plus a symlink per applet, /etc/passwd and /etc/group,
# and the empty mount points a container config expects.
set -euo pipefail
dir=${1:?usage: mkrootfs.sh DIR}
bb=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  echo "mkrootfs: busybox-static is not installed (make deps installs it)" >&2
  exit 1
fi
if [ -x "$dir/bin/busybox" ] && cmp -s "$bb" "$dir/bin/busybox"; then
  exit 0
fi
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home/user,var,run}
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$dir/home/user"
echo "rootfs ready: $dir"
