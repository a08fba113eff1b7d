#!/bin/bash
# The checkpoint/restore scenarios (make test-checkpoint). Runs inside the
# cgroup v2 guest (integration/cgroupv2: init.sh, run.sh with
# CGROUPV2_SCRIPT=this file), as root, in the host's / (read-only over 9p)
# with the guest's own /proc, /sys, pure cgroup2 and tmpfs /tmp and /run.
# CRIU needs what the guest lacks by default: the kernel package's
# netfilter and socket-diag modules (loaded from KDIR, the unpacked kernel
# that build-guest.sh indexed with depmod) and lo up.
# Every scenario prints "PASS name (Ns)" or "FAIL name: why (Ns)" and its
# log; the times of each checkpoint and restore (husk and runc, same guest,
# same run) as "TIME runtime what seconds" lines.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HUSK=${HUSK:?HUSK= missing} ROOT=/run/husk-ck CG=/sys/fs/cgroup W=/tmp/ck
SCENARIOS="counter leave_running pre_dump refused runc_counter"

# ---- helpers (exported: each scenario runs in its own bash under timeout) ----
h() { "$HUSK" --root "$ROOT" "$@"; }
fail() { echo "FAILED: $*"; exit 1; }
eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; echo "ok: $1 = '$2'"; }
wait_for() {
	local n=$(($1 * 5)); shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
	return 1
}
# bundle ID: a counter writing its count to /data/count (through
# /data/.count and a rename; /data is a bind mount of
# $W/data/ID), a tmpfs at /scratch, memory limit 64 MiB, cgroup /husk-ck/ID
bundle() {
	local b=$W/b/$1
	mkdir -p "$b" "$W/data/$1"
	jq --arg root "$W/rootfs" --arg cg "/husk-ck/$1" --arg data "$W/data/$1" '
	  .root.path = $root | .linux.cgroupsPath = $cg
	  | .linux.resources.memory = {limit: 67108864}
	  | .mounts += [{destination: "/data", type: "bind", source: $data, options: ["rbind", "rw"]},
	                {destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["nosuid", "size=1m"]}]
	  | .process.args = ["sh", "-c", "echo kept > /scratch/mark; i=0; while :; do i=$((i+1)); echo $i > /data/.count; mv /data/.count /data/count; sleep 0.1; done"]' \
		"$W/spec.json" > "$b/config.json" || fail "jq for $1"
	echo "$b"
}
count() { cat "$W/data/$1/count" 2>/dev/null || echo 0; }
# above ID N: the count of ID went past N
above() { [ "$(count "$1")" -gt "$2" ] 2>/dev/null; }
# timed RUNTIME WHAT COMMAND...: run it, print "TIME RUNTIME WHAT seconds"
timed() {
	local rt=$1 what=$2 t0 rc
	shift 2
	t0=$(date +%s.%N)
	"$@"
	rc=$?
	echo "TIME $rt $what $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')"
	return $rc
}
# quiet COMMAND...: no stdio from or to the caller
quiet() { "$@" </dev/null >/dev/null 2>&1; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# first error line of a criu log, for a failure message
criu_err() { grep -m1 'Error' "$1" 2>/dev/null; }
not_checked() { echo "NOT-CHECKED: $1 ($2)"; }
export -f h fail eq wait_for bundle count above timed quiet alive criu_err not_checked

# reset ID: the count file removed before a restore (the restored
# counter's first write then says where it went on from). The counter
# writes .count and renames it: criu checks the size of a file open at
# the checkpoint, and count itself is never held open.
reset() { rm -f "$W/data/$1/count"; }
# check_restored ID COUNT-AT-CHECKPOINT: the restored container runs on
check_restored() {
	local id=$1 c0=$2 pid d first
	eq "status after restore" "$(h state "$id" | jq -r .status)" running
	pid=$(h state "$id" | jq -r .pid)
	alive "$pid" || fail "restored init $pid not alive"
	wait_for 30 above "$id" 0 || fail "the restored counter writes nothing"
	first=$(count "$id")
	[ "$first" -gt "$c0" ] || fail "the restored counter's first value is $first, not past the checkpointed $c0 (started over?)"
	echo "ok: the restored counter went on from the checkpointed $c0 (first value $first)"
	eq "tmpfs content" "$(h exec "$id" cat /scratch/mark </dev/null)" kept
	d=$CG/husk-ck/$id
	eq "/proc/<restored init>/cgroup" "$(cat /proc/"$pid"/cgroup)" "0::/husk-ck/$id"
	eq "memory.max of its cgroup" "$(cat "$d/memory.max")" 67108864
	grep -qx "$pid" "$d/cgroup.procs" || fail "restored init $pid not in $d/cgroup.procs"
	echo "ok: restored init $pid in $d with its memory limit"
}
export -f reset check_restored

# ---- scenarios ----
scen_counter() {
	local b pid c0
	b=$(bundle ctr)
	h run -d -b "$b" ctr </dev/null >/dev/null 2>&1 || fail "run -d"
	pid=$(h state ctr | jq -r .pid)
	wait_for 30 above ctr 3 || fail "the counter does not count"
	timed husk checkpoint h checkpoint --image-path "$W/img/ctr" --work-path "$W/work/ctr" ctr ||
		fail "checkpoint: $(criu_err "$W/work/ctr/dump.log")"
	alive "$pid" && fail "init $pid still alive after checkpoint"
	h state ctr >/dev/null 2>&1 && fail "container still listed after checkpoint (runc removes it)"
	c0=$(count ctr)
	sleep 0.5
	eq "count while checkpointed" "$(count ctr)" "$c0"
	echo "ok: processes gone, count stopped at $c0"
	reset ctr
	(cd "$b" && timed husk restore quiet h restore -d --image-path "$W/img/ctr" --work-path "$W/work/ctr" ctr) ||
		fail "restore: $(criu_err "$W/work/ctr/restore.log")"
	check_restored ctr "$c0"
	# once more: a restored container checkpoints and restores again
	timed husk checkpoint2 h checkpoint --image-path "$W/img/ctr2" ctr || fail "second checkpoint: $(criu_err "$W/img/ctr2/dump.log")"
	c0=$(count ctr)
	reset ctr
	timed husk restore2 quiet h restore -d -b "$b" --image-path "$W/img/ctr2" ctr ||
		fail "second restore: $(criu_err "$W/img/ctr2/restore.log")"
	check_restored ctr "$c0"
	h delete --force ctr || fail "delete --force"
}

scen_leave_running() {
	local b pid c0 cb
	b=$(bundle lr)
	h run -d -b "$b" lr </dev/null >/dev/null 2>&1 || fail "run -d"
	pid=$(h state lr | jq -r .pid)
	wait_for 30 above lr 3 || fail "the counter does not count"
	cb=$(count lr)
	timed husk checkpoint-leave-running h checkpoint --leave-running --image-path "$W/img/lr" lr ||
		fail "checkpoint --leave-running: $(criu_err "$W/img/lr/dump.log")"
	eq "status after --leave-running" "$(h state lr | jq -r .status)" running
	eq "same init" "$(h state lr | jq -r .pid)" "$pid"
	c0=$(count lr)
	wait_for 30 above lr "$((c0 + 2))" || fail "the count stopped after --leave-running"
	echo "ok: still counting after --leave-running ($c0 at the checkpoint, now $(count lr))"
	h delete --force lr || fail "delete --force"
	wait_for 10 bash -c "! alive $pid" || fail "init $pid alive after delete --force"
	# the images hold the counter as it was during the checkpoint: past cb
	reset lr
	quiet h restore -d -b "$b" --image-path "$W/img/lr" lr ||
		fail "restore of the --leave-running images: $(criu_err "$W/img/lr/restore.log")"
	check_restored lr "$cb"
	h delete --force lr || fail "delete --force"
}

scen_pre_dump() {
	local b c0
	b=$(bundle pd)
	h run -d -b "$b" pd </dev/null >/dev/null 2>&1 || fail "run -d"
	wait_for 30 above pd 3 || fail "the counter does not count"
	timed husk pre-dump h checkpoint --pre-dump --image-path "$W/img/pd/pre" pd ||
		fail "pre-dump: $(criu_err "$W/img/pd/pre/dump.log")"
	eq "status after pre-dump" "$(h state pd | jq -r .status)" running
	timed husk dump-after-pre-dump h checkpoint --parent-path ../pre --image-path "$W/img/pd/final" pd ||
		fail "dump with --parent-path: $(criu_err "$W/img/pd/final/dump.log")"
	[ -L "$W/img/pd/final/parent" ] || fail "no parent link in the final images"
	echo "ok: final images link their parent: $(readlink "$W/img/pd/final/parent")"
	c0=$(count pd)
	reset pd
	quiet h restore -d -b "$b" --image-path "$W/img/pd/final" pd ||
		fail "restore: $(criu_err "$W/img/pd/final/restore.log")"
	check_restored pd "$c0"
	h delete --force pd || fail "delete --force"
}

scen_refused() {
	local b err
	b=$(bundle rf)
	h run -d -b "$b" rf </dev/null >/dev/null 2>&1 || fail "run -d"
	for f in --lazy-pages "--page-server 127.0.0.1:9999" "--status-fd 5"; do
		# shellcheck disable=SC2086
		if err=$(h checkpoint $f --image-path "$W/img/rf" rf 2>&1); then fail "checkpoint $f succeeded"; fi
		case "$err" in *"${f%% *}"*) echo "ok: checkpoint $f refused: $err" ;; *) fail "checkpoint $f: error does not name it: $err" ;; esac
		eq "status after the refused $f" "$(h state rf | jq -r .status)" running
	done
	for f in --lazy-pages --no-pivot; do
		if err=$(h restore $f -b "$b" --image-path "$W/img/rf" rf2 2>&1); then fail "restore $f succeeded"; fi
		case "$err" in *"$f"*) echo "ok: restore $f refused: $err" ;; *) fail "restore $f: error does not name it: $err" ;; esac
	done
	h state rf2 >/dev/null 2>&1 && fail "a refused restore left container rf2"
	# criu refusing: its first error line and where the log is
	if err=$(h checkpoint --image-path "$W/img/rf-bad" --parent-path /nonexistent rf 2>&1); then
		echo "note: criu accepted a missing parent: $err"
	else
		case "$err" in *dump.log*) echo "ok: criu's refusal names its log: $err" ;; *) fail "criu's refusal does not name its log: $err" ;; esac
	fi
	h delete --force rf || fail "delete --force"
}

# runc 1.1.5 on the same container, for the times next to husk's
scen_runc_counter() {
	local b c0 pid
	command -v runc >/dev/null || { not_checked "runc checkpoint/restore times" "no runc on the host"; return 0; }
	b=$(bundle rc)
	# runc's own cgroup path: the same shape
	(cd "$b" && runc run -d rc </dev/null >/dev/null 2>&1) || fail "runc run -d"
	wait_for 30 above rc 3 || fail "the counter does not count under runc"
	timed runc checkpoint runc checkpoint --image-path "$W/img/rc" --work-path "$W/work/rc" rc ||
		fail "runc checkpoint: $(criu_err "$W/work/rc/dump.log")"
	c0=$(count rc)
	reset rc
	(cd "$b" && timed runc restore quiet runc restore -d --image-path "$W/img/rc" --work-path "$W/work/rc" rc) ||
		fail "runc restore: $(criu_err "$W/work/rc/restore.log")"
	wait_for 30 above rc 0 || fail "runc: the restored counter writes nothing"
	[ "$(count rc)" -gt "$c0" ] || fail "runc: the restored counter started over ($(count rc), checkpointed $c0)"
	pid=$(runc state rc | jq -r .pid)
	eq "runc: /proc/<restored init>/cgroup" "$(cat /proc/"$pid"/cgroup)" "0::/husk-ck/rc"
	runc delete --force rc
}

# ---- setup and run ----
echo "checkpoint: $(uname -r), $($HUSK --version | sed -n 1p), $(criu --version 2>/dev/null | head -1), $(runc --version 2>/dev/null | head -1)"
t0=$(date +%s.%N)
for m in nfnetlink nf_tables nf_conntrack nf_conntrack_netlink nft_compat xt_mark \
	unix_diag inet_diag tcp_diag udp_diag raw_diag af_packet_diag netlink_diag veth tun; do
	modprobe -d "$KDIR" "$m" || echo "checkpoint: modprobe $m from $KDIR failed"
done
ip link set lo up
echo "checkpoint: modules and lo in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
criu check >"$W.check" 2>&1 || { echo "FAIL setup: criu check: $(grep -m1 Error "$W.check")"; exit 1; }
mkdir -p "$W/rootfs"/{bin,proc,sys,dev,tmp,etc,data,scratch} "$ROOT" "$W/img/pd" "$W/work"
cp /bin/busybox "$W/rootfs/bin/busybox"
chroot "$W/rootfs" /bin/busybox --install -s /bin || { echo "FAIL setup: busybox --install"; exit 1; }
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
"$HUSK" spec -b "$W" --no-terminal && mv "$W/config.json" "$W/spec.json" || { echo "FAIL setup: husk spec"; exit 1; }

export -f $(compgen -A function scen_)
pass=0 failed=""
for s in $SCENARIOS; do
	case ",${ONLY:-$s}," in *",$s,"*) ;; *) continue ;; esac
	t0=$(date +%s.%N)
	timeout -k 5 150 bash -c "scen_$s" > "$W/$s.log" 2>&1
	rc=$?
	grep -E '^(NOT-CHECKED|TIME) ' "$W/$s.log"
	t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc = 0 ]; then
		echo "PASS $s (${t}s)"
		[ "${VERBOSE:-0}" = 1 ] && sed 's/^/    | /' "$W/$s.log"
		pass=$((pass + 1))
	else
		why=$(grep '^FAILED: ' "$W/$s.log" | tail -1 | sed 's/^FAILED: //')
		[ $rc = 124 ] || [ $rc = 137 ] && why="timed out after 150s${why:+; last: $why}"
		echo "FAIL $s: ${why:-exit $rc} (${t}s)"
		sed 's/^/    | /' "$W/$s.log"
		failed="$failed $s"
	fi
	for id in $("$HUSK" --root "$ROOT" list -q 2>/dev/null); do "$HUSK" --root "$ROOT" delete --force "$id" >/dev/null 2>&1; done
	for id in $(runc list -q 2>/dev/null); do runc delete --force "$id" >/dev/null 2>&1; done
done
echo "checkpoint: $pass passed, failed:${failed:- none}"
[ -z "$failed" ]
