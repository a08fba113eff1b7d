# containerd 1.6 driven with ctr; the runc v2 shim calls the runtime given by
# --runc-binary.  Sourced by run.sh.
CD_DIR=$OUT/containerd
CD_SOCK=$CD_DIR/containerd.sock
CD_NS=husktest
ctr_() { ctr --address "$CD_SOCK" -n "$CD_NS" "$@"; }
IMG=docker.io/library/husktest:latest
# ctr run with the runtime under test
crun_() { ctr_ run --runc-binary "$WRAP" --runc-root "$CD_DIR/runc-root" "$@"; }

containerd_setup() {
  mkdir -p "$CD_DIR"
  cat >"$CD_DIR/config.toml" <<T
version = 2
root = "$CD_DIR/root"
state = "$CD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CD_SOCK"
[ttrpc]
  address = "$CD_SOCK.ttrpc"
[debug]
  address = "$CD_DIR/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CD_DIR/opt"
T
  # a shim given no BinaryName runs "runc" from containerd's PATH: make that
  # the runtime under test too
  mkdir -p "$CD_DIR/path"; ln -sf "$WRAP" "$CD_DIR/path/runc"
  PATH=$CD_DIR/path:$PATH containerd --config "$CD_DIR/config.toml" >"$CD_DIR/containerd.log" 2>&1 &
  local pid=$!
  register_pid "$pid" containerd
  wait_for "${START_WAIT:-20}" ctr_ version || { tail -20 "$CD_DIR/containerd.log" >&2; return 1; }
  ctr_ image import "$IMAGE_DIR/oci-image.tar" >"$CD_DIR/import.log" 2>&1 || { cat "$CD_DIR/import.log" >&2; return 1; }
  ctr_ image ls -q | grep -qx "$IMG" || { say "image not imported"; ctr_ image ls >&2; return 1; }
}

containerd_teardown() {
  [ -S "$CD_SOCK" ] || return 0
  local id
  for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -a -s KILL "$id" >/dev/null 2>&1; done
  sleep 0.5
  for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task rm -f "$id" >/dev/null 2>&1; done
  for id in $(ctr_ c ls -q 2>/dev/null); do ctr_ c rm "$id" >/dev/null 2>&1; done
  ctr_ image rm "$IMG" >/dev/null 2>&1
  kill_registered
  kill_mentioning "$CD_DIR/"
  rm -rf "/run/containerd/runc/$CD_NS"
  umount_under "$CD_DIR/"
}

task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1==id{print $3}'; }
task_pid() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1==id{print $2}'; }
# start a detached task with its output in a file; echo nothing
run_bg() { local id=$1; shift; crun_ -d --log-uri "file://$CD_DIR/$id.out" "$@"; wait_for 10 test "$(task_status "$id")" = RUNNING; }
cleanup_task() { ctr_ task kill -s KILL "$1" >/dev/null 2>&1 || true; sleep 0.3; ctr_ task rm -f "$1" >/dev/null 2>&1 || true; ctr_ c rm "$1" >/dev/null 2>&1 || true; }
# exit status of a stopped task, as ctr reports it
wait_exit() { # wait_exit ID SECONDS -> prints status
  local n=$(( $2 * 5 )); while [ $n -gt 0 ] && [ "$(task_status "$1")" = RUNNING ]; do sleep 0.2; n=$((n-1)); done
  ctr_ task rm "$1" 2>/dev/null | true
  task_status "$1"
}

cd_run_exit() {
  local out rc=0
  out=$(crun_ --rm "$IMG" c-exit sh -c 'echo hello from $(hostname); exit 3') || rc=$?
  expect_has output "hello from" "$out"
  expect_eq "exit code" 3 "$rc"
}
cd_detached_logs_stop() {
  run_bg c-stop "$IMG" c-stop sh -c 'trap "echo got-term; exit 0" TERM; echo started; while :; do sleep 0.2; done'
  wait_for 5 grep -q started "$CD_DIR/c-stop.out"
  ctr_ task kill -s TERM c-stop
  wait_for 10 gone_or_stopped c-stop
  cat "$CD_DIR/c-stop.out"; expect_has logs got-term "$(cat "$CD_DIR/c-stop.out")"
  cleanup_task c-stop
  # a pid 1 with no TERM handler ignores it: the manager escalates to KILL
  run_bg c-stop2 "$IMG" c-stop2 sleep 1000
  ctr_ task kill -s TERM c-stop2; sleep 2
  expect_eq "still running after TERM" RUNNING "$(task_status c-stop2)"
  ctr_ task kill -s KILL c-stop2
  wait_for 10 gone_or_stopped c-stop2
  cleanup_task c-stop2
}
gone_or_stopped() { local s; s=$(task_status "$1"); [ -z "$s" ] || [ "$s" = STOPPED ]; }
cd_kill_signal() {
  run_bg c-kill "$IMG" c-kill sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done'
  wait_for 5 grep -q ready "$CD_DIR/c-kill.out"
  ctr_ task kill -s USR1 c-kill
  wait_for 5 grep -q got-usr1 "$CD_DIR/c-kill.out"
  expect_eq "still running" RUNNING "$(task_status c-kill)"
  cleanup_task c-kill
}
cd_kill_all() {
  run_bg c-killall "$IMG" c-killall sh -c 'sleep 1000 & sleep 1001 & echo ready; wait'
  wait_for 5 grep -q ready "$CD_DIR/c-killall.out"
  local pid; pid=$(task_pid c-killall)
  local procs; procs=$(cat "$(cg_file "$pid" pids cgroup.procs)" | wc -l)
  expect_eq "processes in the cgroup" 3 "$procs"
  ctr_ task kill -a -s KILL c-killall
  wait_for 10 gone_or_stopped c-killall
  cleanup_task c-killall
}
cd_exec() {
  run_bg c-exec "$IMG" c-exec sleep 1000
  local out rc=0
  out=$(ctr_ task exec --exec-id e1 c-exec sh -c 'echo in-exec; cat /proc/1/cmdline | tr "\0" " "')
  expect_has "exec output" "in-exec" "$out"
  expect_has "exec sees pid 1" "sleep 1000" "$out"
  ctr_ task exec --exec-id e2 c-exec sh -c 'exit 7' || rc=$?
  expect_eq "exec exit code" 7 "$rc"
  # with a tty: ctr needs a terminal of its own, script(1) gives it one
  out=$(script -qec "ctr --address $CD_SOCK -n $CD_NS task exec -t --exec-id e3 c-exec sh -c 'tty; echo tty-ok'" /dev/null </dev/null)
  expect_has "exec -t has a pty" "/dev/pts/" "$out"
  expect_has "exec -t output" "tty-ok" "$out"
  cleanup_task c-exec
}
cd_run_tty() {
  local out
  out=$(script -qec "ctr --address $CD_SOCK -n $CD_NS run -t --rm --runc-binary $WRAP --runc-root $CD_DIR/runc-root $IMG c-tty sh -c 'tty; echo tty-run-ok'" /dev/null </dev/null)
  expect_has "run -t has a pty" "/dev/pts/0" "$out"
  expect_has "run -t output" "tty-run-ok" "$out"
}
cd_ps() {
  run_bg c-ps "$IMG" c-ps sh -c 'sleep 1000 & wait'
  local pid out; pid=$(task_pid c-ps)
  wait_for 5 test "$(ctr_ task ps c-ps | tail -n +2 | wc -l)" -ge 2
  out=$(ctr_ task ps c-ps); echo "$out"
  expect_has "ps lists the init" "$pid" "$out"
  cleanup_task c-ps
}
cd_pause() {
  run_bg c-pause "$IMG" c-pause sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done'
  local pid; pid=$(task_pid c-pause)
  ctr_ task pause c-pause
  expect_eq state PAUSED "$(task_status c-pause)"
  expect_eq "freezer state" FROZEN "$(cat "$(cg_file "$pid" freezer freezer.state)")"
  local a b; a=$(cat /proc/$pid/root/tmp/n); sleep 0.5; b=$(cat /proc/$pid/root/tmp/n)
  expect_eq "counter stopped while paused" "$a" "$b"
  ctr_ task resume c-pause
  expect_eq state RUNNING "$(task_status c-pause)"
  sleep 0.5; b=$(cat /proc/$pid/root/tmp/n)
  [ "$a" != "$b" ] || { echo "FAIL counter did not move after resume"; return 1; }
  cleanup_task c-pause
}
cd_two_step() {
  # "ctr container create" has no --runc-binary (and the 1.6 shim ignores
  # --runtime-config-path): with no BinaryName the shim runs "runc" from
  # containerd's PATH, which setup points at the wrapper
  ctr_ container create "$IMG" c-two -- sh -c 'echo two-step; exit 4'
  local out rc=0
  out=$(ctr_ task start c-two) || rc=$?
  expect_has output two-step "$out"
  expect_eq "exit code" 4 "$rc"
  # and it was the runtime under test that ran it
  grep -q "create .*c-two" "$ARGV_LOG" || { echo "FAIL the shim did not call $WRAP for c-two"; return 1; }
  ctr_ task rm c-two >/dev/null 2>&1 || true; ctr_ c rm c-two
}
cd_options() {
  local host=$CD_DIR/bind; mkdir -p "$host"; echo from-host >"$host/in"
  local out
  out=$(crun_ --rm --read-only --cwd /data --env FOO=bar --cap-drop CAP_NET_RAW --cap-add CAP_SYS_ADMIN \
      --mount "type=bind,src=$host,dst=/data,options=rbind:rw" \
      --mount "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m" \
      "$IMG" c-opts sh -c '
        echo "cwd=$(pwd)"; echo "foo=$FOO"; echo "in=$(cat in)"
        echo from-container > out
        touch /rootfile 2>/dev/null && echo root=rw || echo root=ro
        echo x > /scratch/f && echo "tmpfs=$(grep " /scratch " /proc/mounts | cut -d" " -f3)"
        echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
        echo "net=$(ls /sys/class/net | tr "\n" " ")"')
  echo "$out"
  expect_has workdir "cwd=/data" "$out"
  expect_has env "foo=bar" "$out"
  expect_has "bind in" "in=from-host" "$out"
  expect_eq "bind out" from-container "$(cat "$host/out")"
  expect_has read-only "root=ro" "$out"
  expect_has tmpfs "tmpfs=tmpfs" "$out"
  # containerd's default set minus NET_RAW plus SYS_ADMIN
  expect_has caps "capeff=00000000a82405fb" "$out"
  expect_has "own network namespace" "net=lo " "$out"
}
cd_update() {
  # ctr 1.6 has no "task update": drive the runtime's update the way the shim
  # does, on a container containerd runs (same --root, same JSON on stdin)
  run_bg c-upd --memory-limit 268435456 "$IMG" c-upd sleep 1000
  local pid; pid=$(task_pid c-upd)
  expect_eq "memory limit at start" 268435456 "$(cat "$(cg_file "$pid" memory memory.limit_in_bytes)")"
  local memory='"limit":134217728,"swap":134217728'
  if ! memsw_accounting; then
    memory='"limit":134217728'
    not_checked "containerd's update of a memory+swap limit" "no swap accounting: no memory.memsw.limit_in_bytes"
  fi
  echo "{\"memory\":{$memory},\"pids\":{\"limit\":50}}" |
    "$WRAP" --root "$CD_DIR/runc-root/$CD_NS" --log "$CD_DIR/update-log.json" --log-format json update --resources - c-upd
  expect_eq "memory limit after update" 134217728 "$(cat "$(cg_file "$pid" memory memory.limit_in_bytes)")"
  expect_eq "pids limit after update" 50 "$(cat "$(cg_file "$pid" pids pids.max)")"
  cleanup_task c-upd
}
cd_oom() {
  local rc=0
  crun_ --rm --memory-limit 16777216 "$IMG" c-oom sh -c 'echo 0 > /proc/self/oom_score_adj 2>/dev/null; tail /dev/zero' || rc=$?
  expect_eq "exit code of the OOM-killed container" 137 "$rc"
}
cd_bad_entrypoint() {
  local out rc=0
  out=$(crun_ --rm "$IMG" c-bad nosuch 2>&1) || rc=$?
  echo "$out"
  [ "$rc" != 0 ] || { echo "FAIL ctr run succeeded"; return 1; }
  expect_has "runtime's message shown" 'exec: "nosuch": executable file not found in $PATH' "$out"
  ctr_ c rm c-bad >/dev/null 2>&1 || true
}

containerd_scenarios() {
  scenario run-exit cd_run_exit
  scenario run-tty cd_run_tty
  scenario detached-logs-stop cd_detached_logs_stop
  scenario kill-signal cd_kill_signal
  scenario kill-all cd_kill_all
  scenario exec cd_exec
  scenario ps cd_ps
  scenario pause-resume cd_pause
  scenario create-then-start cd_two_step
  scenario options cd_options
  scenario update cd_update
  scenario oom cd_oom
  scenario bad-entrypoint cd_bad_entrypoint
}
