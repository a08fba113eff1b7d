#!/usr/bin/env bash
# Boot the cgroup v2 guest (built by build-guest.sh) and run the scenarios in
# it against a husk binary of the host:
#   integration/cgroupv2/run.sh HUSK [SCENARIO...]
# The guest sees the host's / read-only over 9p and runs scenarios.sh there
# (chrooted, with the guest's own kernel, proc, sys and a pure cgroup2
# mount). Console output: build/cgroupv2/last/console.log; results:
# build/cgroupv2/last/results.tsv. Compared with expected.tsv: exits 1 when a
# scenario expected to pass did not (or the guest did not finish).
# Environment:
#   CGROUPV2_BUILD     build directory (default build/cgroupv2 of the repo)
#   CGROUPV2_TIMEOUT   seconds for the whole boot (default 300)
#   CGROUPV2_FIRST     seconds to wait for the first console line (default 30);
#                      a boot that prints nothing by then is retried once
#   CGROUPV2_QEMU_ARGS extra qemu arguments
#   CGROUPV2_VERBOSE=1 print the log of passing scenarios too
#   CGROUPV2_SCRIPT    the script the guest runs (default scenarios.sh here;
#                      make test-checkpoint runs integration/checkpoint's)
#   CGROUPV2_EXPECTED  the expected results (default expected.tsv here)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
B=${CGROUPV2_BUILD:-$REPO/build/cgroupv2}
TIMEOUT=${CGROUPV2_TIMEOUT:-300}
FIRST=${CGROUPV2_FIRST:-30}
husk=${1:?usage: run.sh HUSK [SCENARIO...]}
shift
husk=$(readlink -f "$husk")
[ -x "$husk" ] || { echo "cgroupv2: no husk binary at $husk" >&2; exit 1; }
for f in vmlinux initramfs.cpio; do
  [ -s "$B/$f" ] || { echo "cgroupv2: $B/$f missing (run build-guest.sh)" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "cgroupv2: /bin/busybox missing (busybox-static)" >&2; exit 1; }
source "$HERE/../lib/guest.sh"
guest_new_run cgroupv2 "$B"
log=$RUN/console.log
only=$(echo "$*" | tr ' ' ',')

# Kernel command line: words with '=' that the kernel does not know become
# the environment of /init.
script=$(readlink -f "${CGROUPV2_SCRIPT:-$HERE/scenarios.sh}")
expected=$(readlink -f "${CGROUPV2_EXPECTED:-$HERE/expected.tsv}")
# KDIR: the unpacked kernel package, for modprobe -d in the guest (the
# checkpoint scenarios load netfilter and socket-diag modules from it)
cmdline="console=ttyS0 quiet panic=-1 SCRIPT=$script HUSK=$husk KDIR=$B/kernel GUEST_TIMEOUT=$((TIMEOUT - 20))"
[ -n "$only" ] && cmdline="$cmdline ONLY=$only"
[ "${CGROUPV2_VERBOSE:-0}" = 1 ] && cmdline="$cmdline VERBOSE=1"

t0=$SECONDS
guest_boot_retry cgroupv2 "$log" "$TIMEOUT" "$FIRST" \
  qemu-system-x86_64 -M q35 -accel tcg -cpu max -smp 2 -m 512 \
  -nodefaults -no-user-config -display none -no-reboot -net none \
  -serial "file:$log" -monitor none \
  -kernel "$B/vmlinux" -initrd "$B/initramfs.cpio" -append "$cmdline" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  ${CGROUPV2_QEMU_ARGS:-}
[ $? = 2 ] && exit 1
elapsed=$((SECONDS - t0))

guest_rc=$(tr -d '\r' < "$log" | sed -n 's/^CGROUPV2-GUEST-EXIT rc=\([0-9]*\).*/\1/p' | tail -1)
if [ -z "$guest_rc" ]; then
  echo "cgroupv2: the guest did not finish (no exit marker); console: $log" >&2
  exit 1
fi

# What a scenario could not check in the guest: "NOT-CHECKED: what (why)"
# shellcheck source=../not-checked.sh
source "$HERE/../not-checked.sh"
tr -d '\r' < "$log" | sed -n 's/^NOT-CHECKED: \(.*\) (\(.*\))$/\1\t\2/p' |
  while IFS=$'\t' read -r what why; do not_checked "$what" "$why"; done

# Scenario lines: "PASS name" / "FAIL name: why"
tsv=$RUN/results.tsv
tr -d '\r' < "$log" | awk '$1 == "PASS" || $1 == "FAIL" { n = $2; sub(":$", "", n); print n "\t" tolower($1) }' > "$tsv"
# (an expected failure that passes is reported, not a failure: cgroupv2's rule)
GUEST_UNEXPECTED_PASS=report guest_compare cgroupv2 "$expected" "$tsv" "$elapsed"
