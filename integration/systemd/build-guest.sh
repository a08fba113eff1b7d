#!/usr/bin/env bash
# Build the systemd test guest once, cached under build/systemd/:
#   integration/systemd/build-guest.sh [BUILD_DIR]
# - the Debian kernel package that linux-image-amd64 depends on, unpacked
#   (never installed) into BUILD_DIR/kernel, and BUILD_DIR/vmlinux
#   (integration/lib/guest.sh, shared with the cgroup v2 guest)
# - BUILD_DIR/initramfs.cpio: busybox-static, the virtio, 9p and overlay
#   modules and init.sh as /init (it builds the overlay root and
#   switch_roots into the host's systemd)
# The guest runs the host's systemd, dbus, bash, jq and runtime binaries as
# they are (the host's / is its lower layer): those packages must be on the
# host, and are installed here when dpkg -s says they are missing.
# Rebuilt only when an input changes (the kernel package version, init.sh,
# this script, the shared library, busybox).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=${1:-$HERE/../../build/systemd}
mkdir -p "$B"
B=$(cd "$B" && pwd)
# one builder at a time (runs in other shells may share this directory)
exec 9>"$B/.build.lock"
flock 9

source "$HERE/../lib/guest.sh"
guest_need_pkgs systemd qemu-system-x86 busybox-static cpio xz-utils jq systemd dbus coreutils
[ -x /lib/systemd/systemd ] || { guest_say systemd "no /lib/systemd/systemd on the host"; exit 1; }
guest_kernel systemd "$B"

stamp="$GUEST_KVER $(sha256sum "$HERE/init.sh" "$0" "$HERE/../lib/guest.sh" /bin/busybox | sha256sum | cut -c1-16)"
if [ ! -s "$B/initramfs.cpio" ] || [ "$(cat "$B/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
  r=$B/initramfs
  rm -rf "$r"
  mkdir -p "$r"/{bin,dev,proc,sys}
  cp /bin/busybox "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  # dependency order (from each module's depends=)
  guest_modules systemd "$B" "$r" drivers/virtio/virtio_ring drivers/virtio/virtio \
    drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci \
    net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay
  install -m 0755 "$HERE/init.sh" "$r/init"
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$B/initramfs.cpio.tmp"
  mv "$B/initramfs.cpio.tmp" "$B/initramfs.cpio"
  echo "$stamp" > "$B/initramfs.stamp"
  rm -rf "$r"
fi
guest_say systemd "guest ready in $B ($GUEST_KPKG)"
