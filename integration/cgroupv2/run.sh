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
# Each run has its own directory (two runs at once must not share a console
# file); build/cgroupv2/last points to the newest, the 3 newest are kept.
mkdir -p "$B/runs"
RUN=$(mktemp -d "$B/runs/$(date +%Y%m%d-%H%M%S).XXXX")
ln -sfn "runs/$(basename "$RUN")" "$B/last"
ls -1dt "$B"/runs/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
log=$RUN/console.log
only=$(echo "$*" | tr ' ' ',')

# Kernel command line: words with '=' that the kernel does not know become
# the environment of /init.
cmdline="console=ttyS0 quiet panic=-1 SCRIPT=$HERE/scenarios.sh HUSK=$husk GUEST_TIMEOUT=$((TIMEOUT - 20))"
[ -n "$only" ] && cmdline="$cmdline ONLY=$only"
[ "${CGROUPV2_VERBOSE:-0}" = 1 ] && cmdline="$cmdline VERBOSE=1"

boot() {
  : > "$log"
  qemu-system-x86_64 -M q35 -accel tcg -cpu max -smp 2 -m 512 \
    -nodefaults -no-user-config -display none -no-reboot -net none \
    -serial "file:$log" -monitor none \
    -kernel "$B/vmlinux" -initrd "$B/initramfs.cpio" -append "$cmdline" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    ${CGROUPV2_QEMU_ARGS:-} </dev/null >"$RUN/qemu.log" 2>&1 &
  qpid=$!
  local start=$SECONDS printed=0 shown=0
  while kill -0 "$qpid" 2>/dev/null; do
    if [ "$printed" = 0 ] && [ -s "$log" ]; then printed=1; fi
    if [ "$printed" = 0 ] && [ $((SECONDS - start)) -ge "$FIRST" ]; then
      kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
      return 2 # hung before the first console line
    fi
    if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
      kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
      echo "cgroupv2: guest timed out after ${TIMEOUT}s" >&2
      return 1
    fi
    # relay the console as it comes
    local n; n=$(wc -l < "$log")
    if [ "$n" -gt "$shown" ]; then sed -n "$((shown + 1)),${n}p" "$log" | tr -d '\r'; shown=$n; fi
    sleep 0.2
  done
  wait "$qpid"
  local rc=$?
  local n; n=$(wc -l < "$log")
  [ "$n" -gt "$shown" ] && sed -n "$((shown + 1)),\$p" "$log" | tr -d '\r'
  [ "$rc" = 0 ] || { echo "cgroupv2: qemu exited with $rc:" >&2; cat "$RUN/qemu.log" >&2; }
  return 0
}

t0=$SECONDS
boot; r=$?
if [ "$r" = 2 ]; then
  echo "cgroupv2: no console output in ${FIRST}s, retrying the boot once" >&2
  boot; r=$?
  [ "$r" = 2 ] && { echo "cgroupv2: guest hung twice before its first console line" >&2; exit 1; }
fi
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
awk -F'\t' -v elapsed="$elapsed" -v guest_rc="$guest_rc" '
  FNR == NR { if ($1 != "" && $1 !~ /^#/ && $1 != "scenario") { ex[$1] = $2; why[$1] = $3 }; next }
  { res[$1] = $2; order[++n] = $1 }
  END {
    for (i = 1; i <= n; i++) {
      s = order[i]; r = res[s]; e = (s in ex) ? ex[s] : "pass"
      if (r == "pass") passed++
      if (e == "pass" && r != "pass") reg = reg " " s
      if (e != "pass" && r == "pass") unexp = unexp " " s
      if (e != "pass" && r != "pass") known = known " " s
    }
    printf "cgroupv2: %d of %d scenarios pass, guest run %ds\n", passed, n, elapsed
    if (known != "") printf "cgroupv2: expected failures (see expected.tsv):%s\n", known
    if (unexp != "") printf "cgroupv2: unexpected pass, update expected.tsv:%s\n", unexp
    if (n == 0) { print "cgroupv2: no scenario ran"; exit 1 }
    if (reg != "") { printf "cgroupv2: FAILED, expected to pass but did not:%s\n", reg; exit 1 }
  }' "$HERE/expected.tsv" "$tsv" >&2
