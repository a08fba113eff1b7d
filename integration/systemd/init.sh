#!/bin/sh
# /init of the systemd test guest (busybox sh, PID 1 in the initramfs).
# The host's / (read-only over 9p) becomes the lower layer of an overlayfs
# with a tmpfs upper, so systemd can write /etc, /var and /run; the run's
# directory of the host is mounted read-write at /mnt/rtest (9p, tag
# "rtest"). The overlay is prepared for a boot straight into rtest.target
# (units/, masked.txt, the traps of README.md), then init switch_roots into
# it and execs the host's systemd as PID 1.
# Kernel command line (environment here): RTEST_DIR (integration/systemd of
# the checkout, as the host sees it) and the RTEST_* settings written to
# /etc/rtest.env for the test unit.
export PATH=/bin
busybox mount -t proc proc /proc
echo "systemd-guest: init up, kernel $(busybox uname -r)"
busybox mount -t sysfs sysfs /sys
busybox mount -t devtmpfs devtmpfs /dev
die() {
	echo "systemd-guest: $*"
	echo "SYSTEMD-GUEST-EXIT rc=98"
	busybox sync
	busybox poweroff -f
}
while read -r m args; do
	busybox insmod /modules/"$m" $args || die "insmod $m failed"
done < /modules/order
busybox mkdir -p /lower /upper /newroot
busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot /lower ||
	die "cannot mount the host's / over 9p"
busybox mount -t tmpfs -o mode=755 tmpfs /upper
busybox mkdir -p /upper/u /upper/w
# index/redirect_dir/metacopy off: the lower layer (9p) has no xattrs or
# file handles for them; the upper is thrown away at power-off anyway
busybox mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w,index=off,redirect_dir=off,metacopy=off,xino=off \
	overlay /newroot || die "cannot mount the overlay"
r=/newroot
[ -n "$RTEST_DIR" ] && [ -d "$r$RTEST_DIR/units" ] || die "RTEST_DIR=$RTEST_DIR: no units/ there in the host's /"
busybox mkdir -p $r/mnt/rtest
busybox mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=524288,cache=none rtest $r/mnt/rtest ||
	die "cannot mount the run directory (9p tag rtest)"

# Traps (README.md): /.dockerenv makes systemd believe it runs in a
# container and ignore the kernel command line.
busybox rm -f $r/.dockerenv $r/run/.containerenv
# Debian's tmpfiles.d empties /tmp at boot (D /tmp): over 9p that takes
# minutes, and it would hide a checkout under the host's /tmp.
busybox mkdir -p $r/etc/tmpfiles.d
echo 'd /tmp 1777 root root -' > $r/etc/tmpfiles.d/tmp.conf
# No mounts from the host's fstab (its disks are not the guest's).
: > $r/etc/fstab
# The test target and unit, and the units that cannot work here, masked.
busybox cp "$r$RTEST_DIR"/units/* $r/etc/systemd/system/ || die "cannot install the units"
busybox grep -v '^#' "$r$RTEST_DIR/masked.txt" | while read -r unit why; do
	[ -n "$unit" ] && busybox ln -sfn /dev/null "$r/etc/systemd/system/$unit"
done
# Settings for the test unit (EnvironmentFile=)
env | busybox grep '^RTEST_' > $r/etc/rtest.env
echo "systemd-guest: overlay ready, switching root to systemd"
busybox mount --move /dev $r/dev
busybox umount /sys /proc
# switch_root, not chroot: the overlay must become the root of the mount
# namespace (setns(CLONE_NEWNS) of an exec lands there, not in the initramfs).
exec busybox switch_root $r /lib/systemd/systemd
