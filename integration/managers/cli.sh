# Scenarios shared by podman and Docker, whose command lines agree.  The
# manager script defines cli (the manager's command, isolated) and
# RUN_FLAGS (flags every "run"/"create" gets).  Sourced by podman.sh/docker.sh.
IMG=husktest
state_of() { cli inspect -f '{{.State.Status}}' "$1"; }
pid_of() { cli inspect -f '{{.State.Pid}}' "$1"; }
rm_c() { cli rm -f -t 0 "$1" >/dev/null 2>&1 || true; }
# what the manager offers: podman.sh/docker.sh may turn these off after
# sourcing this file. Set here, not defaulted: run.sh sources the manager
# scripts one after the other, and podman's 0s used to carry over to Docker.
UPDATE_PIDS=1     # "update --pids-limit"
OOM_REPORTED=1    # inspect .State.OOMKilled
running() { [ "$(state_of "$1")" = running ]; }
exited() { [ "$(state_of "$1")" = exited ]; }

s_run_exit() {
  local out rc=0
  out=$(cli run --rm $RUN_FLAGS "$IMG" sh -c 'echo hello from $(hostname); exit 3') || rc=$?
  expect_has output "hello from" "$out"
  expect_eq "exit code" 3 "$rc"
}
s_run_tty() {
  local out
  out=$(script -qec "$(cli_line) run --rm -t $RUN_FLAGS $IMG sh -c 'tty; echo tty-run-ok'" /dev/null </dev/null)
  echo "$out"
  expect_has "run -t has a pty" "/dev/pts/0" "$out"
  expect_has "run -t output" "tty-run-ok" "$out"
}
s_detached_logs_stop() {
  cli run -d --name m-stop $RUN_FLAGS "$IMG" sh -c 'trap "echo got-term; exit 0" TERM; echo started; while :; do sleep 0.2; done'
  wait_for 10 sh -c "$(cli_line) logs m-stop 2>&1 | grep -q started"
  cli stop -t 10 m-stop
  expect_eq "exit code after TERM" 0 "$(cli inspect -f '{{.State.ExitCode}}' m-stop)"
  expect_has logs got-term "$(cli logs m-stop 2>&1)"
  rm_c m-stop
  # pid 1 without a TERM handler ignores TERM: stop escalates to KILL after -t
  cli run -d --name m-stop2 $RUN_FLAGS "$IMG" sleep 1000
  local t0=$SECONDS
  cli stop -t 2 m-stop2
  expect_eq "exit code after KILL" 137 "$(cli inspect -f '{{.State.ExitCode}}' m-stop2)"
  [ $((SECONDS - t0)) -ge 2 ] || { echo "FAIL stopped before the timeout"; return 1; }
  rm_c m-stop2
}
s_kill_signal() {
  cli run -d --name m-kill $RUN_FLAGS "$IMG" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done'
  wait_for 10 sh -c "$(cli_line) logs m-kill 2>&1 | grep -q ready"
  cli kill -s USR1 m-kill
  wait_for 10 sh -c "$(cli_line) logs m-kill 2>&1 | grep -q got-usr1"
  expect_eq state running "$(state_of m-kill)"
  cli kill m-kill
  expect_eq "exit code after kill" 137 "$(cli wait m-kill)"
  rm_c m-kill
}
s_exec() {
  cli run -d --name m-exec $RUN_FLAGS "$IMG" sleep 1000
  local out rc=0
  out=$(cli exec m-exec sh -c 'echo in-exec; cat /proc/1/cmdline | tr "\0" " "')
  expect_has "exec output" in-exec "$out"
  expect_has "exec sees pid 1" "sleep 1000" "$out"
  cli exec m-exec sh -c 'exit 7' || rc=$?
  expect_eq "exec exit code" 7 "$rc"
  out=$(cli exec -u 1000 -w /tmp -e X=y m-exec sh -c 'echo "$(id -u) $(pwd) $X"')
  expect_eq "exec --user --workdir --env" "1000 /tmp y" "$out"
  out=$(script -qec "$(cli_line) exec -it m-exec sh -c 'tty; echo tty-ok'" /dev/null </dev/null)
  expect_has "exec -it has a pty" "/dev/pts/" "$out"
  expect_has "exec -it output" tty-ok "$out"
  rm_c m-exec
}
s_top() {
  cli run -d --name m-top $RUN_FLAGS "$IMG" sh -c 'sleep 1000 & wait'
  wait_for 10 sh -c "$(cli_line) top m-top | grep -q 'sleep 1000'"
  cli top m-top
  rm_c m-top
}
s_pause() {
  cli run -d --name m-pause $RUN_FLAGS "$IMG" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done'
  local pid a b; pid=$(pid_of m-pause)
  cli pause m-pause
  expect_eq state paused "$(state_of m-pause)"
  expect_eq "freezer state" FROZEN "$(cat "$(cg_file "$pid" freezer freezer.state)")"
  a=$(cat /proc/$pid/root/tmp/n); sleep 0.5; b=$(cat /proc/$pid/root/tmp/n)
  expect_eq "counter stopped while paused" "$a" "$b"
  cli unpause m-pause
  expect_eq state running "$(state_of m-pause)"
  sleep 0.5; b=$(cat /proc/$pid/root/tmp/n)
  [ "$a" != "$b" ] || { echo "FAIL counter did not move after unpause"; return 1; }
  rm_c m-pause
}
s_update() {
  cli run -d --name m-upd --memory 256m --memory-swap 256m --pids-limit 100 $RUN_FLAGS "$IMG" sleep 1000
  local pid; pid=$(pid_of m-upd)
  expect_eq "memory limit at start" 268435456 "$(cat "$(cg_file "$pid" memory memory.limit_in_bytes)")"
  expect_eq "pids limit at start" 100 "$(cat "$(cg_file "$pid" pids pids.max)")"
  if [ "$UPDATE_PIDS" = 1 ]; then
    cli update --memory 128m --memory-swap 128m --pids-limit 50 m-upd
    expect_eq "pids limit after update" 50 "$(cat "$(cg_file "$pid" pids pids.max)")"
  else
    cli update --memory 128m --memory-swap 128m m-upd
    not_checked "$MGR update --pids-limit" "$MGR $(cli --version | awk '{ print $NF }') has no such option"
  fi
  expect_eq "memory limit after update" 134217728 "$(cat "$(cg_file "$pid" memory memory.limit_in_bytes)")"
  expect_eq "still running" running "$(state_of m-upd)"
  rm_c m-upd
}
s_restart() {
  cli run -d --name m-restart $RUN_FLAGS "$IMG" sleep 1000
  local p1 p2; p1=$(pid_of m-restart)
  cli restart -t 1 m-restart
  p2=$(pid_of m-restart)
  expect_eq state running "$(state_of m-restart)"
  [ "$p1" != "$p2" ] || { echo "FAIL same pid after restart"; return 1; }
  rm_c m-restart
}
s_create_start() {
  cli create --name m-two $RUN_FLAGS "$IMG" sh -c 'echo two-step; exit 4'
  expect_eq state created "$(state_of m-two)"
  local out rc=0
  out=$(cli start -a m-two) || rc=$?
  expect_has output two-step "$out"
  expect_eq "exit code" 4 "$rc"
  rm_c m-two
}
s_options() {
  local host=$MDIR/bind; mkdir -p "$host"; echo from-host >"$host/in"; chmod 777 "$host"
  local out
  out=$(cli run --rm $RUN_FLAGS --user 1000:1000 --hostname hk1 -e FOO=bar -w /data \
      --cap-drop ALL --cap-add CHOWN --cap-add KILL \
      -v "$host:/data" "$IMG" sh -c '
        echo "id=$(id -u):$(id -g)"; echo "host=$(hostname)"
        echo "cwd=$(pwd)"; echo "foo=$FOO"; echo "in=$(cat in)"
        echo from-container > out
        echo "capbnd=$(grep CapBnd /proc/self/status | cut -f2)"
        echo "net=$(ls /sys/class/net | tr "\n" " ")"')
  echo "$out"
  expect_has user "id=1000:1000" "$out"
  expect_has hostname "host=hk1" "$out"
  expect_has workdir "cwd=/data" "$out"
  expect_has env "foo=bar" "$out"
  expect_has "bind in" "in=from-host" "$out"
  expect_eq "bind out" from-container "$(cat "$host/out")"
  expect_has "caps CHOWN+KILL only" "capbnd=0000000000000021" "$out"
  expect_has "--network none" "net=lo " "$out"
}
s_read_only() {
  local out
  out=$(cli run --rm $RUN_FLAGS --read-only "$IMG" sh -c '
        touch /rootfile 2>/dev/null && echo root=rw || echo root=ro')
  echo "$out"
  expect_has "--read-only" "root=ro" "$out"
  out=$(cli run --rm $RUN_FLAGS "$IMG" sh -c '
        touch /rootfile 2>/dev/null && echo root=rw || echo root=ro')
  expect_has "writable without --read-only" "root=rw" "$out"
}
s_tmpfs() {
  local out
  out=$(cli run --rm $RUN_FLAGS --tmpfs /scratch "$IMG" sh -c '
        echo x > /scratch/f && echo "tmpfs=$(grep " /scratch " /proc/mounts | cut -d" " -f3)"')
  echo "$out"
  expect_has tmpfs "tmpfs=tmpfs" "$out"
}
s_oom() {
  local rc=0
  cli run --name m-oom --memory 16m --memory-swap 16m $RUN_FLAGS "$IMG" sh -c 'tail /dev/zero' || rc=$?
  expect_eq "exit code" 137 "$rc"
  if [ "$OOM_REPORTED" = 1 ]; then
    expect_eq OOMKilled true "$(cli inspect -f '{{.State.OOMKilled}}' m-oom)"
  else
    not_checked "$MGR inspect .State.OOMKilled after an OOM kill" "conmon on this cgroup v1 host reports false, with runc too"
  fi
  rm_c m-oom
}
s_bad_entrypoint() {
  local out rc=0
  out=$(cli run --name m-bad $RUN_FLAGS "$IMG" nosuch 2>&1) || rc=$?
  echo "$out"
  expect_eq "exit code" 127 "$rc"
  expect_has "runtime's message shown" 'exec: "nosuch": executable file not found in $PATH' "$out"
  rm_c m-bad
}

cli_scenarios() {
  scenario run-exit s_run_exit
  scenario run-tty s_run_tty
  scenario detached-logs-stop s_detached_logs_stop
  scenario kill-signal s_kill_signal
  scenario exec s_exec
  scenario top s_top
  scenario pause-unpause s_pause
  scenario update s_update
  scenario restart s_restart
  scenario create-then-start s_create_start
  scenario options s_options
  scenario read-only s_read_only
  scenario tmpfs s_tmpfs
  scenario oom s_oom
  scenario bad-entrypoint s_bad_entrypoint
}
