#!/usr/bin/env bash
# Boot the systemd guest (built by build-guest.sh) and run the scenarios in
# it against a runtime of the host:
#   integration/systemd/run.sh [--runtime husk|runc|PATH] [SCENARIO...]
# SCENARIO: a name of scenarios.sh, or a group: driver, managers, hybrid
# (default: driver and managers, in one boot; hybrid boots systemd's hybrid
# cgroup layout, so it is a boot of its own). The manager scenarios' packages (docker.io,
# podman, containerd) are installed and their image built here, on the host.
# husk: $HUSK (make's release binary), runc: /usr/bin/runc. The guest's
# systemd (PID 1), dbus and the runtime are the host's binaries, seen
# through an overlay of the host's / (see README.md). Console:
# build/systemd/last/console.log; the scenarios' output as the guest wrote
# it: last/guest.log; its journal: last/journal.log; results:
# last/results.tsv (scenario, pass|fail|unchecked, seconds). Compared with
# expected.tsv (the runtime's lines): exits 1 when a result differs from the
# expected one, when a scenario could not be checked, or when the guest did
# not boot or finish.
# Environment:
#   SYSTEMD_BUILD      build directory (default build/systemd of the repo)
#   SYSTEMD_TIMEOUT    seconds for the whole boot (default 420, plus 240 for
#                      each manager scenario: docker, podman, containerd,
#                      and 180 for the rootless one)
#   SYSTEMD_FIRST      seconds to wait for the first console line (default 30);
#                      a boot that prints nothing by then is retried once
#   SYSTEMD_MEM        guest memory in MiB (default 1024)
#   SYSTEMD_QEMU_ARGS  extra qemu arguments
#   SYSTEMD_VERBOSE=1  print the log of passing scenarios too
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
B=${SYSTEMD_BUILD:-$REPO/build/systemd}
FIRST=${SYSTEMD_FIRST:-30}
RUNTIME=husk
while [ $# -gt 0 ]; do
  case $1 in
    --runtime) RUNTIME=$2; shift 2 ;;
    --runtime=*) RUNTIME=${1#*=}; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
case $RUNTIME in
  husk) RT=${HUSK:-} ;;
  runc) RT=/usr/bin/runc ;;
  */*) RT=$RUNTIME; RUNTIME=$(basename "$RUNTIME") ;;
  *) echo "systemd: unknown runtime $RUNTIME (husk, runc or a path)" >&2; exit 2 ;;
esac
source "$HERE/../lib/guest.sh"
guest_new_run systemd "$B"
log=$RUN/console.log
tsv=$RUN/results.tsv
only=$(echo "$*" | tr ' ' ',')
plan=$(RTEST_ONLY=$only bash "$HERE/scenarios.sh" --list)
[ -n "$plan" ] || { echo "systemd: no scenario named: $*" >&2; exit 2; }
# the manager scenarios of the plan (they run the host's Docker, podman,
# containerd in the guest, on the busybox image of integration/managers)
managers=$(for s in $plan; do case $s in docker | podman | containerd | cri) echo "$s" ;; esac; done)
nmgr=$(echo $managers | wc -w)
hier=unified
case " $(echo $plan) " in *" hybrid_"*) hier=hybrid ;; esac
if [ "$hier" = hybrid ] && [ -n "$(echo "$plan" | grep -v '^hybrid_')" ]; then
  echo "systemd: the hybrid scenarios need a boot of their own (make test-systemd-hybrid): $(echo $plan)" >&2; exit 2
fi
# the rootless scenario starts a user's systemd and five containers: 180 s more
nrl=$(echo "$plan" | grep -cx rootless)
TIMEOUT=${SYSTEMD_TIMEOUT:-$((420 + 240 * nmgr + 180 * nrl))}

# Anything that keeps the guest from running the scenarios fails loudly:
# every scenario "unchecked" in results.tsv, exit 1. Never a silent skip.
could_not_check() {
  local s
  : > "$tsv"
  for s in $plan; do printf '%s\tunchecked\t\n' "$s" >> "$tsv"; done
  echo "systemd: FAILED, could not check any scenario: $*" >&2
  echo "systemd: results: $tsv" >&2
  exit 1
}
[ -n "$RT" ] || could_not_check "no husk binary (HUSK is not set: make test-systemd builds it)"
RT=$(readlink -f "$RT")
[ -x "$RT" ] || could_not_check "no runtime binary at $RT"
command -v qemu-system-x86_64 >/dev/null || could_not_check "no qemu-system-x86_64 (package qemu-system-x86)"
for f in vmlinux initramfs.cpio; do
  [ -s "$B/$f" ] || could_not_check "$B/$f missing (run build-guest.sh)"
done
for f in /lib/systemd/systemd /usr/bin/dbus-daemon /bin/busybox /usr/bin/jq; do
  [ -x "$f" ] || could_not_check "$f missing on the host (the guest runs the host's)"
done
if [ -n "$managers" ]; then
  pkgs=""
  for m in $managers; do
    case $m in docker) pkgs="$pkgs docker.io containerd" ;; podman) pkgs="$pkgs podman" ;; containerd) pkgs="$pkgs containerd" ;; cri) pkgs="$pkgs containerd containernetworking-plugins" ;; esac
  done
  guest_need_pkgs systemd $pkgs || could_not_check "could not install$pkgs"
  IMAGE=$REPO/build/managers/image
  "$HERE/../managers/mkimage.sh" "$IMAGE" || could_not_check "could not build the test image (integration/managers/mkimage.sh)"
fi
case $REPO in *' '*) could_not_check "the checkout's path has a space (it goes on the kernel command line): $REPO" ;; esac

# the scenarios' bound in the guest: the boot's, less ~90 s for booting and
# powering off
gtimeout=$((TIMEOUT - 90))
[ "$gtimeout" -ge 30 ] || gtimeout=$((TIMEOUT / 2))

# Kernel command line: systemd's settings, then words with '=' that the
# kernel does not know, which become the environment of /init (init.sh
# writes the RTEST_* ones to /etc/rtest.env for the test unit).
cmdline="console=ttyS0 quiet panic=-1 apparmor=0"
# the hybrid scenarios boot systemd's hybrid layout (v1 controllers, its
# cgroup2 at /sys/fs/cgroup/unified); every other one pure v2. One layout a
# boot: a plan that mixes them is refused above.
if [ "$hier" = hybrid ]; then
  cmdline="$cmdline systemd.unified_cgroup_hierarchy=0 systemd.unit=rtest.target"
else
  cmdline="$cmdline systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all systemd.unit=rtest.target"
fi
cmdline="$cmdline RTEST_DIR=$HERE RTEST_RT=$RT RTEST_RT_NAME=$RUNTIME RTEST_TIMEOUT=$gtimeout"
[ -n "$only" ] && cmdline="$cmdline RTEST_ONLY=$only"
[ -n "$managers" ] && cmdline="$cmdline RTEST_IMAGE=$IMAGE"
[ "${SYSTEMD_VERBOSE:-0}" = 1 ] && cmdline="$cmdline RTEST_VERBOSE=1"
[ -n "${TIMING_RUNS:-}" ] && cmdline="$cmdline RTEST_TIMING_RUNS=$TIMING_RUNS"

echo "systemd: booting the guest, runtime $RUNTIME ($RT), run directory $RUN" >&2
t0=$SECONDS
guest_boot_retry systemd "$log" "$TIMEOUT" "$FIRST" \
  qemu-system-x86_64 -M q35 -accel tcg -cpu max -smp 2 -m "${SYSTEMD_MEM:-1024}" \
  -nodefaults -no-user-config -display none -no-reboot -net none \
  -serial "file:$log" -monitor none \
  -kernel "$B/vmlinux" -initrd "$B/initramfs.cpio" -append "$cmdline" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$RUN",mount_tag=rtest,security_model=none \
  ${SYSTEMD_QEMU_ARGS:-}
boot=$?
elapsed=$((SECONDS - t0))
[ "$boot" = 2 ] && could_not_check "the guest printed nothing, twice (console: $log)"

# The scenarios' lines as the guest wrote them (9p), else as the console has them.
out=$RUN/guest.log
[ -s "$out" ] || out=$log
guest_rc=$(tr -d '\r' < "$out" | sed -n 's/^SYSTEMD-GUEST-EXIT rc=\([0-9]*\).*/\1/p' | tail -1)
tr -d '\r' < "$out" | awk -v plan="$plan" '
  $1 == "PASS" || $1 == "FAIL" || $1 == "UNCHECKED" {
    n = $2; sub(":$", "", n); t = ""
    if (match($NF, /^\([0-9.]+s\)$/)) t = substr($NF, 2, length($NF) - 3)
    res[n] = tolower($1); tm[n] = t
  }
  END {
    k = split(plan, p, "\n")
    for (i = 1; i <= k; i++) printf "%s\t%s\t%s\n", p[i], (p[i] in res) ? res[p[i]] : "unchecked", tm[p[i]]
  }' > "$tsv"
# where the time went (guest uptime, from in-guest.sh and scenarios.sh)
up_running=$(sed -n 's/^SYSTEMD-GUEST: system .* at \([0-9.]*\)s of uptime.*/\1/p' "$out" | head -1)
up_setup=$(sed -n 's/^systemd-guest: setup done at \([0-9.]*\)s.*/\1/p' "$out" | head -1)
up_done=$(sed -n 's/^SYSTEMD-GUEST: scenarios done at \([0-9.]*\)s.*/\1/p' "$out" | head -1)
if [ -z "$guest_rc" ]; then
  echo "systemd: the guest did not finish (no exit marker); console: $log" >&2
  grep -q . "$RUN/journal.log" 2>/dev/null && echo "systemd: guest journal: $RUN/journal.log" >&2
fi
GUEST_SUMMARY_EXTRA=" (guest uptime: system up ${up_running:-?}s, first scenario ${up_setup:-?}s, scenarios done ${up_done:-?}s)" \
  guest_compare systemd "$HERE/expected.tsv" "$tsv" "$elapsed" "$RUNTIME"
rc=$?
[ -z "$guest_rc" ] && rc=1
echo "systemd: results: $tsv" >&2
exit $rc
