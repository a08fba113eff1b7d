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

need=""
# (jq and strace are for scenarios.sh, which runs on the host's / in the guest)
for p in qemu-system-x86 busybox-static cpio xz-utils jq strace; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  echo "cgroupv2: installing$need" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; }
fi

# The versioned image package behind the linux-image-amd64 metapackage.
if [ -s "$B/kernel.pkg" ]; then
  pkg=$(cat "$B/kernel.pkg")
else
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { echo "cgroupv2: cannot find the kernel package of linux-image-amd64" >&2; exit 1; }
fi
kver=${pkg#linux-image-}

if [ ! -f "$B/kernel/boot/vmlinuz-$kver" ]; then
  mkdir -p "$B/dl"
  rm -f "$B"/dl/*.deb
  echo "cgroupv2: downloading $pkg (not installed: unpacked into $B/kernel)" >&2
  # (apt warns that root downloads unsandboxed: its log goes to dl/apt.log)
  if ! (cd "$B/dl" && apt-get download "$pkg" >apt.log 2>&1); then
    apt-get update -qq
    (cd "$B/dl" && apt-get download "$pkg" >apt.log 2>&1) || { cat "$B/dl/apt.log" >&2; exit 1; }
  fi
  rm -rf "$B/kernel"
  dpkg-deb -x "$B"/dl/"$pkg"_*.deb "$B/kernel"
  rm -f "$B"/dl/*.deb "$B/vmlinux" "$B/initramfs.cpio"
fi
echo "$pkg" > "$B/kernel.pkg"

# vmlinux: the xz payload of the bzImage (Debian builds with CONFIG_KERNEL_XZ).
if [ ! -s "$B/vmlinux" ]; then
  z=$B/kernel/boot/vmlinuz-$kver
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | awk -F: 'NR == 1 { print $1 }')
  [ -n "$off" ] || { echo "cgroupv2: no xz payload in $z" >&2; exit 1; }
  # (xz stops after the stream: tail may die of SIGPIPE, which is fine)
  (set +o pipefail; tail -c +"$((off + 1))" "$z" | xz -dc --single-stream > "$B/vmlinux.tmp")
  [ "$(head -c 4 "$B/vmlinux.tmp" | tail -c 3)" = ELF ] || { echo "cgroupv2: $z did not give an ELF vmlinux" >&2; exit 1; }
  mv "$B/vmlinux.tmp" "$B/vmlinux"
fi

# initramfs: rebuilt when its inputs change.
stamp="$kver $(sha256sum "$HERE/init.sh" "$0" /bin/busybox | sha256sum | cut -c1-16)"
if [ ! -s "$B/initramfs.cpio" ] || [ "$(cat "$B/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
  r=$B/initramfs
  rm -rf "$r"
  mkdir -p "$r"/{bin,dev,proc,sys,host,modules}
  cp /bin/busybox "$r/bin/busybox"
  ln -s busybox "$r/bin/sh"
  m=$B/kernel/lib/modules/$kver/kernel
  # dependency order (from each module's depends=)
  for mod in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet net/9p/9pnet_virtio \
    fs/netfs/netfs fs/fscache/fscache fs/9p/9p drivers/block/brd; do
    f=$m/$mod.ko
    [ -f "$f" ] || f=$m/$mod.ko.xz
    [ -f "$f" ] || { echo "cgroupv2: module $mod missing in $pkg" >&2; exit 1; }
    case $f in *.xz) xz -dc "$f" > "$r/modules/$(basename "$mod").ko" ;; *) cp "$f" "$r/modules/" ;; esac
    case $mod in
      # two 1 MiB ram disks (block 1:0, 1:1) for io.max and the device rules
      */brd) echo "brd.ko rd_nr=2 rd_size=1024" ;;
      *) echo "$(basename "$mod").ko" ;;
    esac >> "$r/modules/order"
  done
  install -m 0755 "$HERE/init.sh" "$r/init"
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$B/initramfs.cpio.tmp"
  mv "$B/initramfs.cpio.tmp" "$B/initramfs.cpio"
  echo "$stamp" > "$B/initramfs.stamp"
  rm -rf "$r"
fi
echo "cgroupv2: guest ready in $B ($pkg)" >&2
