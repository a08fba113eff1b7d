#!/usr/bin/env bash
# run.sh [--runtime husk|runc] [MANAGER...]
# Runs the manager scenarios (containerd, podman, docker, cri by default) with the
# runtime under test behind an argv-logging wrapper.  Every daemon is started
# here with its own root/state/socket under build/managers/RUNTIME and torn
# down by pid on exit, even on failure.  Exit status 1 when a scenario failed
# that expected-failures.tsv does not list.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUNTIME=husk
while [ $# -gt 0 ]; do
  case $1 in
    --runtime) RUNTIME=$2; shift 2;;
    --runtime=*) RUNTIME=${1#*=}; shift;;
    -h|--help) sed -n '2,8p' "$0"; exit 0;;
    *) break;;
  esac
done
MANAGERS=${*:-containerd podman docker cri}
case $RUNTIME in
  # (make exports HUSK; make release builds for the host triple)
  husk) RT_BIN=${HUSK:-${CARGO_TARGET_DIR:-$REPO/target}/$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')/release/husk};;
  runc) RT_BIN=$(command -v runc);;
  */*) RT_BIN=$RUNTIME; RUNTIME=$(basename "$RUNTIME");;
  *) echo "unknown runtime $RUNTIME" >&2; exit 2;;
esac
[ -x "$RT_BIN" ] || { echo "runtime binary $RT_BIN not found (make release?)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh needs root" >&2; exit 2; }

BASE=$REPO/build/managers
OUT=$BASE/$RUNTIME
export HERE REPO RUNTIME RT_BIN OUT
source "$HERE/lib.sh"

# packages, idempotently
pkgs=""
for m in $MANAGERS; do
  case $m in containerd) pkgs="$pkgs containerd";; podman) pkgs="$pkgs podman";; docker) pkgs="$pkgs docker.io containerd";;
    cri) pkgs="$pkgs containerd containernetworking-plugins";; esac
done
missing=""; for p in $pkgs busybox-static; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  say "installing:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } ||
    { say "could not install$missing"; exit 2; }
fi

# a previous run that was killed hard may have left things behind
if [ -d "$OUT" ]; then
  kill_mentioning "$OUT/"; umount_under "$OUT/"; rm -rf "$OUT"
fi
mkdir -p "$OUT/bin"
PIDS_FILE=$OUT/daemons.pids; : >"$PIDS_FILE"
ARGV_LOG=$OUT/argv.log; : >"$ARGV_LOG"
RESULTS=$OUT/results.tsv; : >"$RESULTS"
export PIDS_FILE ARGV_LOG RESULTS

# the wrapper the managers call: logs argv (and the exit status, and the
# runtime's own --log on failure) then runs the real runtime with the
# manager's stdio, fds, environment untouched
source "$HERE/wrapper.sh"
WRAP=$OUT/bin/$RUNTIME-logged
write_argv_wrapper "$WRAP" "$RT_BIN" "$ARGV_LOG"
export WRAP

"$HERE/mkimage.sh" "$BASE/image" || exit 2
IMAGE_DIR=$BASE/image; export IMAGE_DIR

cleanup() {
  local m
  for m in $MANAGERS; do
    declare -F "${m}_teardown" >/dev/null && MGR=$m "${m}_teardown" 2>/dev/null
  done
  kill_registered
  kill_mentioning "$OUT/"
  umount_under "$OUT/"
  rm_cgroups husktest
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
for m in $MANAGERS; do
  source "$HERE/$m.sh"
  MGR=$m; export MGR
  say "== $m with $RUNTIME ($RT_BIN)"
  t=$(date +%s)
  if ! "${m}_setup"; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$m" setup FAIL 0 "the manager did not start" >>"$RESULTS"
    say "  FAIL   $m did not start: see $OUT/$m/*.log"; continue
  fi
  "${m}_scenarios"
  "${m}_teardown"
  say "   $m took $(( $(date +%s) - t ))s"
done

say ""
say "== summary ($RUNTIME, $(( $(date +%s) - T0 ))s; argv log: $ARGV_LOG)"
awk -F'\t' '{c[$1" "$3]++} END{for(k in c) print "   " k ": " c[k]}' "$RESULTS" | sort >&2
if awk -F'\t' '$3=="FAIL"{f=1} END{exit !f}' "$RESULTS"; then
  say "FAILED:"; awk -F'\t' '$3=="FAIL"{print "   " $1 " " $2}' "$RESULTS" >&2
  exit 1
fi
exit 0
