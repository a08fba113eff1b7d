# Shared helpers for the manager tests; sourced by run.sh and the per-manager
# scripts.  Globals set by run.sh:
#   RUNTIME       husk | runc           (which runtime is under test)
#   RT_BIN        the real runtime binary
#   WRAP          the argv-logging wrapper the managers are pointed at
#   ARGV_LOG      where the wrapper logs every call
#   OUT           scratch dir of this run (build/managers/$RUNTIME)
#   MGR           the manager being tested (containerd | podman | docker)
#   RESULTS       TSV: manager scenario result seconds note

HERE=${HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
STEP_TIMEOUT=${STEP_TIMEOUT:-90}
# not_checked WHAT WHY: what a scenario could not check on this host
# shellcheck source=../not-checked.sh
source "$HERE/../not-checked.sh"

say() { printf '%s\n' "$*" >&2; }

# expected_failure MGR SCENARIO -> prints the reason, 0 when listed for $RUNTIME
expected_failure() {
  awk -F'\t' -v rt="$RUNTIME" -v m="$1" -v s="$2" \
    '!/^#/ && NF>=4 && ($1==rt||$1=="*") && ($2==m||$2=="*") && $3==s {print $4; f=1; exit} END{exit !f}' \
    "$HERE/expected-failures.tsv"
}

# scenario NAME FUNC [ARGS...]: runs FUNC in a subshell with set -e, under a
# timeout, output to $OUT/$MGR/NAME.log; records PASS/FAIL/XFAIL/XPASS.
scenario() {
  local name=$1; shift
  local log="$OUT/$MGR/$name.log" t0 t1 rc reason result
  mkdir -p "$OUT/$MGR"
  echo "### $MGR $name ($RUNTIME)" >>"$ARGV_LOG"
  t0=$(date +%s.%N)
  ( set -euo pipefail; "$@" ) >"$log" 2>&1 &
  local pid=$!
  # a watchdog: a scenario that hangs is a failure, not a stuck make
  ( trap 'kill $sp 2>/dev/null; exit 0' TERM; sleep "$STEP_TIMEOUT" & sp=$!; wait $sp
    kill -TERM "$pid" 2>/dev/null && echo "TIMEOUT after ${STEP_TIMEOUT}s" >>"$log" ) &
  local dog=$!
  wait "$pid"; rc=$?
  kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
  t1=$(date +%s.%N)
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  if reason=$(expected_failure "$MGR" "$name"); then
    if [ "$rc" = 0 ]; then result=XPASS; else result=XFAIL; fi
  else
    reason=""
    if [ "$rc" = 0 ]; then result=PASS; else result=FAIL; fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$MGR" "$name" "$result" "$secs" "$reason" >>"$RESULTS"
  printf '  %-6s %-22s %5ss %s\n' "$result" "$name" "$secs" "${reason:+($reason)}" >&2
  if [ "$result" = FAIL ]; then sed 's/^/      | /' "$log" | tail -25 >&2; fi
  return 0
}

# assertions used inside scenarios (set -e makes them fatal)
expect_eq() { # expect_eq WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2], got [$3]"; return 1; fi
  echo "ok $1: [$3]"
}
expect_has() { # expect_has WHAT NEEDLE HAYSTACK
  case "$3" in *"$2"*) echo "ok $1: has [$2]";; *) echo "FAIL $1: [$2] not in [$3]"; return 1;; esac
}
expect_rc() { # expect_rc WHAT RC CMD...
  local want=$2 got=0; shift 2
  "$@" || got=$?
  if [ "$got" != "$want" ]; then echo "FAIL rc of [$*]: expected $want, got $got"; return 1; fi
  echo "ok rc $got of [$*]"
}
# wait_for SECONDS CMD...: retry CMD every 0.2s until it succeeds, for
# SECONDS of wall time (a count of polls is not: under TCG, in the systemd
# guest, one poll can take a second)
wait_for() {
  local end=$((SECONDS + $1)); shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ $SECONDS -lt "$end" ] || break
    sleep 0.2
  done
  echo "FAIL timed out waiting for: $*"; return 1
}

# does the v1 memory controller account swap (memory.memsw.* files)?
memsw_accounting() { [ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ]; }

# cgroup v1 file of a process: cg_file PID CONTROLLER FILE
cg_file() {
  local path; path=$(awk -F: -v c="$2" '{n=split($2,a,","); for(i=1;i<=n;i++) if(a[i]==c) print $3}' "/proc/$1/cgroup")
  if [ -d /sys/fs/cgroup/"$2" ]; then echo "/sys/fs/cgroup/$2$path/$3"
  else echo "/sys/fs/cgroup$(awk -F: '$1==0{print $3}' "/proc/$1/cgroup")/$3"; fi
}

# ---- teardown registry: every daemon we start is written here, killed by pid
PIDS_FILE=${PIDS_FILE:-}
register_pid() { echo "$1 $2" >>"$PIDS_FILE"; }   # register_pid PID NAME
kill_registered() {
  [ -s "$PIDS_FILE" ] || return 0
  local pid name n
  tac "$PIDS_FILE" | while read -r pid name; do
    kill -0 "$pid" 2>/dev/null || continue
    say "teardown: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for n in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { say "teardown: $name did not stop, SIGKILL"; kill -KILL "$pid"; }
  done
  : >"$PIDS_FILE"
}
# processes whose command line mentions DIR (shims, conmon of our daemons): kill by pid
kill_mentioning() {
  local dir=$1 f p c
  # (one grep over all of them: a subshell per process costs seconds under
  # TCG, in the systemd guest; then each candidate is read again)
  for f in $(grep -lsF -- "$dir" /proc/[0-9]*/cmdline); do
    p=${f#/proc/}; p=${p%/cmdline}
    [ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
    c=$( { tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
    case $c in *"$dir"*) ;; *) continue;; esac
    case $c in *run.sh*|grep*|tr*) continue;; esac
    say "teardown: killing leftover pid $p: ${c:0:120}"
    kill -KILL "$p" 2>/dev/null
  done
}
# unmount everything under DIR, deepest first
umount_under() {
  local m
  for m in $(awk -v d="$1" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
# remove cgroup dirs named NAME (a top-level parent we chose) in every hierarchy
rm_cgroups() {
  local name=$1 d
  for d in $(find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name "$name" 2>/dev/null); do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
