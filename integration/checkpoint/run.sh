#!/usr/bin/env bash
# make test-checkpoint: husk checkpoint/restore with CRIU in the cgroup v2
# guest (integration/cgroupv2), next to runc on the same containers:
#   integration/checkpoint/run.sh HUSK [SCENARIO...]
# CRIU does not work on this host's kernel (criu check fails: vdso) but
# does in the guest's Debian 6.1 kernel once the netfilter and socket-diag
# modules are loaded: they are indexed here (depmod into the unpacked
# kernel package) and loaded in the guest by scenarios.sh. Prints the
# checkpoint and restore times of husk and runc (the README's numbers).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
B=${CGROUPV2_BUILD:-$REPO/build/cgroupv2}
source "$HERE/../lib/guest.sh"
# criu and runc run in the guest from the host's /; nftables: criu's
# network lock; kmod: depmod here, modprobe there
guest_need_pkgs checkpoint criu runc nftables kmod iproute2 || exit 1
"$HERE/../cgroupv2/build-guest.sh" "$B" || exit 1
kver=$(sed 's/^linux-image-//' "$B/kernel.pkg")
if [ ! -s "$B/kernel/lib/modules/$kver/modules.dep" ]; then
  depmod -b "$B/kernel" "$kver" || { echo "checkpoint: depmod of $B/kernel failed" >&2; exit 1; }
fi
export CGROUPV2_SCRIPT=$HERE/scenarios.sh CGROUPV2_EXPECTED=$HERE/expected.tsv
export CGROUPV2_TIMEOUT=${CGROUPV2_TIMEOUT:-600}
"$HERE/../cgroupv2/run.sh" "$@"
rc=$?
# the times, one line per runtime
tr -d '\r' < "$B/last/console.log" | awk '$1 == "TIME" { t[$2] = t[$2] " " $3 " " $4 "s" } END { for (r in t) print "checkpoint: times (" r "):" t[r] }' >&2
exit $rc
