#!/usr/bin/env bash
# Build the cgroup v2 test guest once, cached under build/cgroupv2/:
#   integration/cgroupv2/build-guest.sh [BUILD_DIR]
# - the Debian kernel package that linux-image-amd64 depends on (apt-get
#   download, dpkg-deb -x into BUILD_DIR/kernel: nothing is installed)
# - BUILD_DIR/vmlinux: the uncompressed kernel, booted directly (PVH)
# - BUILD_DIR/initramfs.cpio: busybox-static, the virtio, 9p and brd modules and
#   init.sh as /init
# Rebuilt only when an input changes (the kernel package version, init.sh,
# this script, busybox).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=${1:-$HERE/../../build/cgroupv2}
mkdir -p "$B"
B=$(cd "$B" && pwd)
# one builder at a time (runs in other shells may share this directory)
exec 9>"$B/.build.lock"
flock 9

source "$HERE/../lib/guest.sh"
# (jq, strace and bpftool are for scenarios.sh, which runs on the host's / in the guest)
guest_need_pkgs cgroupv2 qemu-system-x86 busybox-static cpio xz-utils jq strace bpftool
guest_kernel cgroupv2 "$B"
pkg=$GUEST_KPKG kver=$GUEST_KVER

# initramfs: rebuilt when its inputs change.
stamp="$kver $(sha256sum "$HERE/init.sh" "$0" "$HERE/../lib/guest.sh" /bin/busybox | sha256sum | cut -c1-16)"
if [ ! -s "$B/initramfs.cpio" ] || [ "$(cat "$B/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
  r=$B/initramfs
  rm -rf "$r"
  mkdir -p "$r"/{bin,dev,proc,sys,host,modules}
  cp /bin/busybox "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  # dependency order (from each module's depends=); brd: two 1 MiB ram
  # disks (block 1:0, 1:1) for io.max and the device rules
  guest_modules cgroupv2 "$B" "$r" drivers/virtio/virtio_ring drivers/virtio/virtio \
    drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci \
    net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p \
    "drivers/block/brd rd_nr=2 rd_size=1024"
  install -m 0755 "$HERE/init.sh" "$r/init"
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$B/initramfs.cpio.tmp"
  mv "$B/initramfs.cpio.tmp" "$B/initramfs.cpio"
  echo "$stamp" > "$B/initramfs.stamp"
  rm -rf "$r"
fi
echo "cgroupv2: guest ready in $B ($pkg)" >&2
