#!/bin/sh
# /init of the cgroup v2 test guest (busybox sh, PID 1 in the initramfs).
# Mounts the host's / read-only over 9p at /host, gives it the guest's own
# proc, sys, dev, tmp and run, mounts a pure cgroup2 hierarchy (nsdelegate)
# at /host/sys/fs/cgroup, then switches root to /host and runs the test
# script (host path in SCRIPT, from the kernel command line) with the host's
# bash.
# Prints "CGROUPV2-GUEST-EXIT rc=N" and powers off.
export PATH=/bin
busybox mount -t proc proc /proc
echo "cgroupv2-guest: init up, kernel $(busybox uname -r)"
busybox mount -t sysfs sysfs /sys
busybox mount -t devtmpfs devtmpfs /dev
finish() {
	echo "CGROUPV2-GUEST-EXIT rc=$1"
	busybox sync
	busybox poweroff -f
}
while read -r m args; do
	busybox insmod /modules/"$m" $args || { echo "cgroupv2-guest: insmod $m failed"; finish 97; }
done < /modules/order
busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot /host ||
	{ echo "cgroupv2-guest: cannot mount the host's / over 9p"; finish 98; }
h=/host
busybox mount -t proc proc $h/proc
busybox mount -t sysfs sysfs $h/sys
busybox mount -t cgroup2 -o nsdelegate cgroup2 $h/sys/fs/cgroup || { echo "cgroupv2-guest: cannot mount cgroup2"; finish 98; }
busybox mount -t devtmpfs devtmpfs $h/dev
busybox mkdir -p $h/dev/pts $h/dev/shm
busybox mount -t devpts -o newinstance,ptmxmode=0666 devpts $h/dev/pts
busybox mount -t tmpfs tmpfs $h/dev/shm
# The guest gets its own writable /tmp; a checkout under the host's /tmp
# (a CI clone, say) must stay visible: stage the host's /tmp, then bind the
# top directories of SCRIPT and HUSK back over the new tmpfs.
busybox mkdir -p /stage
busybox mount --bind $h/tmp /stage
busybox mount -t tmpfs -o mode=1777 tmpfs $h/tmp
for p in "$SCRIPT" "$HUSK"; do
	case "$p" in
	/tmp/*/*)
		top=${p#/tmp/}
		top=${top%%/*}
		if [ ! -d "$h/tmp/$top" ]; then
			busybox mkdir -p "$h/tmp/$top"
			busybox mount --bind "/stage/$top" "$h/tmp/$top"
		fi
		;;
	esac
done
busybox mount -t tmpfs -o mode=755 tmpfs $h/run
busybox umount /sys /proc 2>/dev/null
[ -n "$SCRIPT" ] || { echo "cgroupv2-guest: no SCRIPT= on the kernel command line"; finish 99; }
[ -x $h/bin/busybox ] || { echo "cgroupv2-guest: the host has no /bin/busybox (busybox-static)"; finish 99; }
# switch_root, not chroot: the host's / must become the root of the guest's
# mount namespace, or setns(CLONE_NEWNS) (husk exec) would land in the
# initramfs. The host's static busybox takes over as PID 1, runs the script
# with the host's bash and powers off.
exec busybox switch_root $h /bin/busybox sh -c '
	/usr/bin/timeout -k 5 "${GUEST_TIMEOUT:-240}" /bin/bash "$SCRIPT" </dev/console >/dev/console 2>&1
	echo "CGROUPV2-GUEST-EXIT rc=$?"
	/bin/busybox sync
	/bin/busybox poweroff -f'
