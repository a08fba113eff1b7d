#!/bin/bash
# The systemd cgroup driver scenarios. Runs inside the systemd guest (as
# rtest.service, see in-guest.sh): systemd 252 is PID 1 on a pure cgroup v2
# hierarchy, dbus runs. Every scenario drives the runtime under test with
# --systemd-cgroup and --root /run/rt-systemd, checks what systemd knows
# (systemctl) and what the kernel has (/sys/fs/cgroup); the manager
# scenarios (managers.sh) have Docker, podman or containerd drive it with
# their default systemd driver instead. Each prints one line:
# "PASS name (Ns)", "FAIL name: why (Ns)" (followed by its log, indented) or
# "UNCHECKED name: why" when the guest cannot run it.
# Environment (from /etc/rtest.env): RTEST_RT (the runtime binary),
# RTEST_RT_NAME (husk, runc: the prefix of the default unit name),
# RTEST_ONLY (comma-separated scenario names, or the groups driver and
# managers), RTEST_IMAGE (the managers' busybox image, built on the host by
# integration/managers/mkimage.sh), RTEST_VERBOSE=1 (print the
# log of passing scenarios too).
#   scenarios.sh --list    the scenarios that would run (on the host too)
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The scenario list, in order, and each one's bound in seconds (generous:
# TCG is 5-10 times slower than native and the CPUs are shared). The
# managers (managers.sh) start a daemon each: dockerd 6-12 s, podman's first
# command 25 s, a run 4-15 s under TCG.
# Two groups, each a boot of its own in make (a name in RTEST_ONLY): driver
# (the runtime alone, make test-systemd) and managers (make
# test-systemd-managers).
DRIVER_SCENARIOS="direct update pause_resume kill_delete nested_slice empty_path bad_path no_flag_later rootless"
MANAGER_SCENARIOS="docker podman containerd cri"
# hybrid: a boot of its own with systemd.unified_cgroup_hierarchy=0 (v1
# controllers + systemd's cgroup2 at /sys/fs/cgroup/unified: this machine's
# layout), run.sh chooses the kernel command line from the plan
HYBRID_SCENARIOS="hybrid_driver"
# timing: not a test (make bench-systemd asks for it by name)
BENCH_SCENARIOS="timing"
SCENARIOS="$DRIVER_SCENARIOS $MANAGER_SCENARIOS $HYBRID_SCENARIOS $BENCH_SCENARIOS"
declare -A BOUND=([direct]=120 [update]=120 [pause_resume]=120 [kill_delete]=120
	[nested_slice]=120 [empty_path]=120 [bad_path]=60 [no_flag_later]=120 [rootless]=300
	[docker]=240 [podman]=300 [containerd]=180 [cri]=300 [timing]=600 [hybrid_driver]=180)

selected() {
	local s only=,${RTEST_ONLY:-},
	only=${only//,driver,/,${DRIVER_SCENARIOS// /,},}
	only=${only//,managers,/,${MANAGER_SCENARIOS// /,},}
	only=${only//,hybrid,/,${HYBRID_SCENARIOS// /,},}
	for s in $SCENARIOS; do
		case "${RTEST_ONLY:+$only}" in *",$s,"*) echo "$s" ;; "") case " $BENCH_SCENARIOS $HYBRID_SCENARIOS " in *" $s "*) ;; *) echo "$s" ;; esac ;; esac
	done
}
if [ "${1:-}" = --list ]; then selected; exit 0; fi

export RT=${RTEST_RT:?RTEST_RT= missing} RT_NAME=${RTEST_RT_NAME:-$(basename "${RTEST_RT}")}
export ROOT=/run/rt-systemd CG=/sys/fs/cgroup W=/tmp/rtest

# ---- helpers (exported: each scenario runs in its own bash under timeout) ----
rt() { "$RT" --root "$ROOT" --systemd-cgroup "$@"; }
# without --systemd-cgroup: what podman does after create
rtn() { "$RT" --root "$ROOT" "$@"; }
# el: seconds since the scenario started, for its log ([12.3s])
el() { local d=$(((${EPOCHREALTIME/./} - SCEN_T0) / 100000)); printf '[%d.%ds]' $((d / 10)) $((d % 10)); }
fail() { echo "$(el) FAILED: $*"; exit 1; }
ok() { echo "$(el) ok: $*"; }
# eq WHAT ACTUAL EXPECTED
eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; ok "$1 = '$2'"; }
# bundle ID JQ-FILTER: config from `$RT spec` changed by the filter, rootfs
# shared (read-only), cgroupsPath system.slice:rtest:ID unless the filter
# sets or deletes it.
bundle() {
	local b=$W/b/$1
	mkdir -p "$b"
	jq --arg root "$W/rootfs" --arg cg "system.slice:rtest:$1" \
		".root.path = \$root | .linux.cgroupsPath = \$cg | $2" "$W/spec.json" > "$b/config.json" ||
		fail "jq filter for $1"
	echo "$b"
}
# create ID BUNDLE: create with --systemd-cgroup; the runtime's stderr in
# the log, and in the failure. Never in $(...): the container's init
# inherits the runtime's stdout and stderr and would hold a pipe open.
create() {
	rt create -b "$2" "$1" </dev/null >"$W/$1.create.out" 2>"$W/$1.create.err" ||
		fail "$RT_NAME create $1: $(paste -sd ' ' "$W/$1.create.err" | head -c 400)"
	sed 's/^/create stderr: /' "$W/$1.create.err"
	ok "created $1"
}
# up ID JQ-FILTER: create + start (both with --systemd-cgroup)
up() {
	local b
	b=$(bundle "$1" "$2") || exit 1
	create "$1" "$b"
	rt start "$1" || fail "$RT_NAME start $1"
	ok "started $1"
}
status() { rtn state "$1" 2>/dev/null | jq -r .status; }
is_status() { [ "$(status "$1")" = "$2" ]; }
initpid() { rtn state "$1" | jq -r .pid; }
# wait_for SECONDS COMMAND...: poll every 0.2 s, for SECONDS of wall time
# (under TCG one poll can take a second)
wait_for() {
	local end=$((SECONDS + $1)); shift
	while :; do
		"$@" && return 0
		[ $SECONDS -lt "$end" ] || return 1
		sleep 0.2
	done
}
# nprocs CGDIR: processes in CGDIR and below
nprocs() { find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null | wc -l; }
nprocs_ge() { [ "$(nprocs "$1")" -ge "$2" ]; }
val() { cat "$1" 2>/dev/null || echo "<no $1>"; }
key() { awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null; }
frozen_is() { [ "$(key "$1/cgroup.events" frozen)" = "$2" ]; }
prop() { systemctl show -P "$2" "$1" 2>&1; }
# props UNIT P1,P2,...: one systemctl show (each call costs 0.3-1.5 s under
# TCG), logged; the values in the associative array PROP (declare -A PROP
# in the caller first)
props() {
	local line
	while IFS= read -r line; do
		echo "systemctl show: $line"
		PROP[${line%%=*}]=${line#*=}
	done < <(systemctl show -p "$2" "$1")
}
args() { printf '.process.args = %s' "$(printf '%s\n' "$@" | jq -R . | jq -s -c .)"; }
# is the unit gone for systemd (not loaded, not listed)?
unit_gone() {
	[ "$(prop "$1" LoadState)" = not-found ] &&
		[ -z "$(systemctl list-units --all --plain --no-legend "$1" 2>/dev/null)" ]
}
# gone ID UNIT CGDIR: after delete: no unit, no cgroup directory, no state
gone() {
	wait_for 10 unit_gone "$2" ||
		fail "$2 still known to systemd: LoadState=$(prop "$2" LoadState) ActiveState=$(prop "$2" ActiveState); $(systemctl list-units --all --plain --no-legend "$2")"
	ok "$2 gone (systemctl: LoadState=not-found, not in list-units)"
	[ ! -e "$3" ] || fail "$3 left behind"
	ok "$3 gone"
	[ ! -e "$ROOT/$1" ] || fail "state $ROOT/$1 left behind"
	rtn list -q 2>/dev/null | grep -qx "$1" && fail "$1 still listed by $RT_NAME list"
	ok "no state left for $1"
}
# scope_ok ID UNIT CGPATH: the container runs in an active scope at CGPATH
# (relative to /sys/fs/cgroup, with the leading /): its init in the scope
# (runc puts it directly there; a sub-cgroup of the scope, as crun's
# "container", is accepted and logged)
scope_ok() {
	local pid cg
	eq "status" "$(status "$1")" running
	eq "systemctl is-active $2" "$(systemctl is-active "$2")" active
	eq "ControlGroup of $2" "$(prop "$2" ControlGroup)" "$3"
	[ -d "$CG$3" ] || fail "no cgroup directory $CG$3"
	pid=$(initpid "$1")
	cg=$(cat /proc/"$pid"/cgroup)
	case $cg in
	"0::$3") ok "/proc/<init>/cgroup (host view) = '$cg': directly in the scope" ;;
	"0::$3"/*) ok "/proc/<init>/cgroup (host view) = '$cg': in a sub-cgroup of the scope" ;;
	*) fail "/proc/<init>/cgroup (host view): got '$cg', want '0::$3' (or below)" ;;
	esac
	grep -qx "$pid" "$CG${cg#0::}/cgroup.procs" || fail "init $pid not in $CG${cg#0::}/cgroup.procs: $(val "$CG${cg#0::}/cgroup.procs")"
	ok "init $pid in $CG${cg#0::}/cgroup.procs"
}
export -f el ok rt rtn fail eq bundle create up status is_status initpid wait_for nprocs nprocs_ge val key frozen_is prop props args unit_gone gone scope_ok

# The limits of direct (and partly update):
LIMITS='.linux.resources += {
  memory: {limit: 67108864, reservation: 33554432},
  pids: {limit: 50},
  cpu: {shares: 512, quota: 50000, period: 100000, cpus: "0"}}'
export LIMITS

# ---- scenarios ----
scen_direct() {
	local id=direct u=rtest-direct.scope p=/system.slice/rtest-direct.scope d w inside want
	d=$CG$p
	up $id "$LIMITS | $(args sh -c 'sleep 1000 & sleep 1000')"
	scope_ok $id $u $p
	declare -A PROP
	props $u Slice,Delegate,MemoryMax,MemoryLow,TasksMax,CPUWeight,CPUQuotaPerSecUSec,CPUQuotaPeriodUSec,AllowedCPUs
	eq "Slice" "${PROP[Slice]}" system.slice
	eq "Delegate" "${PROP[Delegate]}" yes
	eq "MemoryMax" "${PROP[MemoryMax]}" 67108864
	eq "MemoryLow" "${PROP[MemoryLow]}" 33554432
	eq "TasksMax" "${PROP[TasksMax]}" 50
	eq "CPUQuotaPerSecUSec" "${PROP[CPUQuotaPerSecUSec]}" 500ms
	eq "CPUQuotaPeriodUSec" "${PROP[CPUQuotaPeriodUSec]}" 100ms
	eq "AllowedCPUs" "${PROP[AllowedCPUs]}" 0
	eq memory.max "$(val "$d/memory.max")" 67108864
	eq memory.low "$(val "$d/memory.low")" 33554432
	eq pids.max "$(val "$d/pids.max")" 50
	eq cpu.max "$(val "$d/cpu.max")" "50000 100000"
	eq cpuset.cpus "$(val "$d/cpuset.cpus")" 0
	# shares 512 -> weight: runc 1.1.5 gives 20, the newer formula 59; either,
	# but systemd and the kernel must agree
	w=${PROP[CPUWeight]}
	[[ $w =~ ^[0-9]+$ ]] || fail "CPUWeight of $u not set: '$w'"
	eq "cpu.weight (= the unit's CPUWeight)" "$(val "$d/cpu.weight")" "$w"
	echo "note: shares 512 -> CPUWeight $w"
	# the container's own view: with a cgroup namespace its cgroup is its root
	inside=$(rt exec $id cat /proc/self/cgroup </dev/null 2>&1) || fail "exec: $inside"
	# (the same cgroup as the init's: a cgroup namespace makes it the root)
	if jq -e '.linux.namespaces | map(.type) | index("cgroup")' "$W/b/$id/config.json" >/dev/null; then
		want="0::/"
	else
		want=$(cat /proc/"$(initpid $id)"/cgroup)
	fi
	eq "/proc/self/cgroup in the container (exec)" "$inside" "$want"
	rt delete --force $id || fail "delete --force"
	gone $id $u "$d"
}

scen_update() {
	local id=upd u=rtest-upd.scope p=/system.slice/rtest-upd.scope d
	d=$CG$p
	up $id "$LIMITS | $(args sleep 1000)"
	scope_ok $id $u $p
	declare -A PROP
	props $u MemoryMax,TasksMax
	eq "MemoryMax before" "${PROP[MemoryMax]}" 67108864
	eq "TasksMax before" "${PROP[TasksMax]}" 50
	rt update --memory 134217728 --pids-limit 80 --cpu-quota 20000 --cpu-period 100000 $id || fail "update"
	ok "updated"
	props $u MemoryMax,TasksMax,CPUQuotaPerSecUSec,CPUWeight
	eq "MemoryMax" "${PROP[MemoryMax]}" 134217728
	eq "TasksMax" "${PROP[TasksMax]}" 80
	eq "CPUQuotaPerSecUSec" "${PROP[CPUQuotaPerSecUSec]}" 200ms
	eq memory.max "$(val "$d/memory.max")" 134217728
	eq pids.max "$(val "$d/pids.max")" 80
	eq cpu.max "$(val "$d/cpu.max")" "20000 100000"
	# untouched by the update
	eq "memory.low (untouched)" "$(val "$d/memory.low")" 33554432
	eq "cpu.weight (untouched, = CPUWeight)" "$(val "$d/cpu.weight")" "${PROP[CPUWeight]}"
	# Limits written only to cgroupfs are put back by systemd: after a
	# daemon-reload the files must still have the updated values.
	systemctl daemon-reload || fail "daemon-reload"
	ok "daemon-reload done"
	eq "memory.max after daemon-reload" "$(val "$d/memory.max")" 134217728
	eq "pids.max after daemon-reload" "$(val "$d/pids.max")" 80
	eq "cpu.max after daemon-reload" "$(val "$d/cpu.max")" "20000 100000"
	rt delete --force $id || fail "delete --force"
	gone $id $u "$d"
}

scen_pause_resume() {
	local id=pr u=rtest-pr.scope p=/system.slice/rtest-pr.scope d
	up $id "$(args sh -c 'while :; do sleep 0.1; done')"
	scope_ok $id $u $p
	# the container's cgroup: the scope, or the sub-cgroup of it the init is in
	d=$CG$(cut -d: -f3- /proc/"$(initpid $id)"/cgroup)
	rt pause $id || fail "pause"
	ok "paused"
	eq "$d/cgroup.freeze" "$(val "$d/cgroup.freeze")" 1
	wait_for 10 frozen_is "$d" 1
	eq "cgroup.events frozen" "$(key "$d/cgroup.events" frozen)" 1
	eq status "$(status $id)" paused
	eq "systemctl is-active $u (paused)" "$(systemctl is-active $u)" active
	rt resume $id || fail "resume"
	ok "resumed"
	eq "$d/cgroup.freeze" "$(val "$d/cgroup.freeze")" 0
	wait_for 10 frozen_is "$d" 0
	eq "cgroup.events frozen" "$(key "$d/cgroup.events" frozen)" 0
	eq status "$(status $id)" running
	rt delete --force $id || fail "delete --force"
	gone $id $u "$CG$p"
}

scen_kill_delete() {
	local u=rtest-kd1.scope p=/system.slice/rtest-kd1.scope
	# kill --all, then delete of the stopped container
	up kd1 "$(args sh -c 'sleep 1000 & sleep 1000 & sleep 1000')"
	scope_ok kd1 $u $p
	wait_for 10 nprocs_ge "$CG$p" 3 || fail "expected 3 processes in $CG$p (and below), got $(nprocs "$CG$p")"
	ok "$(nprocs "$CG$p") processes in $CG$p"
	rt kill --all kd1 KILL || fail "kill --all KILL"
	wait_for 10 is_status kd1 stopped || fail "status $(status kd1) after kill --all"
	ok "stopped after kill --all KILL"
	rt delete kd1 || fail "delete"
	gone kd1 $u "$CG$p"
	# delete --force of a running container
	u=rtest-kd2.scope p=/system.slice/rtest-kd2.scope
	up kd2 "$(args sh -c 'sleep 1000 & sleep 1000')"
	scope_ok kd2 $u $p
	rt delete --force kd2 || fail "delete --force of a running container"
	gone kd2 $u "$CG$p"
}

scen_nested_slice() {
	local id=ns u=rtest-ns.scope p=/a.slice/a-b.slice/rtest-ns.scope
	up $id ".linux.cgroupsPath = \"a-b.slice:rtest:$id\" | $(args sleep 1000)"
	scope_ok $id $u $p
	eq "Slice of $u" "$(prop $u Slice)" a-b.slice
	rt delete --force $id || fail "delete --force"
	gone $id $u "$CG$p"
}

scen_empty_path() {
	local id=ep u=$RT_NAME-ep.scope p=/system.slice/$RT_NAME-ep.scope
	up $id "del(.linux.cgroupsPath) | $(args sleep 1000)"
	scope_ok $id $u $p
	rt delete --force $id || fail "delete --force"
	gone $id $u "$CG$p"
}

scen_bad_path() {
	local id=bp b out
	b=$(bundle $id ".linux.cgroupsPath = \"/foo/bar\" | $(args sleep 1000)")
	rt create -b "$b" $id </dev/null >"$W/$id.create.out" 2>"$W/$id.create.err" &&
		fail "create with cgroupsPath /foo/bar succeeded"
	out=$(cat "$W/$id.create.err")
	echo "create failed as it should: $out"
	echo "$out" | grep -q 'slice:prefix:name' || fail "the error does not mention slice:prefix:name: $out"
	ok "the error mentions slice:prefix:name"
	[ ! -e "$ROOT/$id" ] || fail "state $ROOT/$id left behind"
	rtn list -q 2>/dev/null | grep -qx $id && fail "$id listed by $RT_NAME list"
	[ ! -e "$CG/foo" ] || fail "$CG/foo created"
	out=$(systemctl list-units --all --plain --no-legend "*-$id.scope" "*bar*" 2>&1)
	[ -z "$out" ] || fail "units left: $out"
	ok "nothing left behind (state, cgroup, unit)"
}

scen_no_flag_later() {
	local id=nf u=rtest-nf.scope p=/system.slice/rtest-nf.scope b
	b=$(bundle $id "$LIMITS | $(args sh -c 'sleep 1000 & sleep 1000')")
	create $id "$b"
	rtn start $id || fail "start without --systemd-cgroup"
	scope_ok $id $u $p
	eq "MemoryMax" "$(prop $u MemoryMax)" 67108864
	rtn kill $id KILL || fail "kill without --systemd-cgroup"
	wait_for 10 is_status $id stopped || fail "status $(status $id) after kill"
	ok "stopped after kill"
	rtn delete $id || fail "delete without --systemd-cgroup"
	gone $id $u "$CG$p"
}

# rootless (pure v2): an unprivileged user runs the runtime with
# --rootless true --systemd-cgroup and the user's systemd (systemd --user,
# user@UID.service, started by the system manager as logind would at a
# login), podman's rootless cgroupsPath user.slice:PREFIX:ID. The user's
# config is `spec --rootless` run by that user: a user namespace mapping only
# the user's own uid and gid (what a rootless user gets without any setup:
# no /etc/subuid range, no setuid newuidmap). The runtime runs from this
# unit's cgroup (/system.slice/rtest.service, not the user's): like a login
# session's session-N.scope, a cgroup the user does not own, so neither the
# user nor the user's systemd can move a process from there into the user's
# tree by itself. Checks: the scope in the USER manager (systemctl --user),
# its cgroup under user@UID.service, the init in it, every limit whose
# controller user@UID.service delegates applied (unit property and file),
# a limit whose controller is not delegated refused naming its field (and
# nothing left), exec in the same cgroup, update, pause/resume, kill --all,
# delete (no unit, no cgroup, no state), a second container after; and
# without XDG_RUNTIME_DIR or DBUS_SESSION_BUS_ADDRESS, an error naming them.
RL_USER=rtest-rl
# asuser CMD...: as the user, its runtime directory set, nothing else of
# ours in the environment (a login shell's variables, minus the bus: the
# runtime must find the user's systemd through XDG_RUNTIME_DIR)
asuser() {
	setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups --reset-env \
		env XDG_RUNTIME_DIR="/run/user/$RL_UID" "$@"
}
# urt ARGS...: the runtime under test as the user (its default --root: the
# rootless one in $XDG_RUNTIME_DIR)
urt() { asuser "$RT" --rootless true --systemd-cgroup "$@"; }
uctl() { asuser systemctl --user "$@"; }
uprop() { uctl show -P "$2" "$1" 2>&1; }
uprops() {
	local line
	while IFS= read -r line; do
		echo "systemctl --user show: $line"
		PROP[${line%%=*}]=${line#*=}
	done < <(uctl show -p "$2" "$1")
}
ustatus() { urt state "$1" 2>/dev/null | jq -r .status; }
uis_status() { [ "$(ustatus "$1")" = "$2" ]; }
uunit_gone() {
	[ "$(uprop "$1" LoadState)" = not-found ] &&
		[ -z "$(uctl list-units --all --plain --no-legend "$1" 2>/dev/null)" ]
}
# ms since T (an EPOCHREALTIME without the dot)
ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }
# ubundle ID JQ-FILTER: `spec --rootless` as the user, the shared rootfs,
# cgroupsPath user.slice:rtest:ID unless the filter changes it
ubundle() {
	local b=$W/rl/$1
	mkdir -p "$b" && chown "$RL_UID:$RL_GID" "$b" || fail "mkdir $b"
	(cd "$b" && asuser "$RT" spec --rootless) || fail "$RT_NAME spec --rootless as $RL_USER"
	jq --arg root "$W/rootfs" --arg cg "user.slice:rtest:$1" \
		".root.path = \$root | .root.readonly = true | .process.terminal = false | .linux.cgroupsPath = \$cg | $2" \
		"$b/config.json" > "$b/config.json.new" && mv "$b/config.json.new" "$b/config.json" ||
		fail "jq filter for $1"
	echo "$b"
}
# ucreate ID BUNDLE: create as the user; stderr in the log and the failure
ucreate() {
	local t=${EPOCHREALTIME/./}
	urt create -b "$2" "$1" </dev/null >"$W/$1.create.out" 2>"$W/$1.create.err" ||
		fail "$RT_NAME create $1 (as $RL_USER): $(paste -sd ' ' "$W/$1.create.err" | head -c 600)"
	sed 's/^/create stderr: /' "$W/$1.create.err"
	ok "created $1 as $RL_USER ($(ms_since "$t") ms)"
}
# uleft ID UNIT CGDIR: after delete or a refused create: no unit in the
# user's systemd, no cgroup directory, no state
uleft() {
	wait_for 10 uunit_gone "$2" ||
		fail "$2 still known to the user's systemd: LoadState=$(uprop "$2" LoadState) ActiveState=$(uprop "$2" ActiveState)"
	ok "$2 gone from the user's systemd"
	[ ! -e "$3" ] || fail "$3 left behind"
	ok "$3 gone"
	[ ! -e "/run/user/$RL_UID/$RT_NAME/$1" ] || fail "state /run/user/$RL_UID/$RT_NAME/$1 left behind"
	urt list -q 2>/dev/null | grep -qx "$1" && fail "$1 still listed by $RT_NAME list (as $RL_USER)"
	ok "no state left for $1"
}
# the user, its systemd; RL_UID, RL_GID, RL_MGR (the manager's cgroup) set
rl_setup() {
	local t
	id -u $RL_USER >/dev/null 2>&1 || useradd -M -d /nonexistent -s /bin/sh $RL_USER || fail "useradd $RL_USER"
	RL_UID=$(id -u $RL_USER) RL_GID=$(id -g $RL_USER)
	ok "user $RL_USER: uid $RL_UID gid $RL_GID (no /etc/subuid range: own-id map)"
	t=${EPOCHREALTIME/./}
	systemctl start "user@$RL_UID.service" || fail "systemctl start user@$RL_UID.service: $(systemctl status --no-pager "user@$RL_UID.service" 2>&1 | tail -5)"
	wait_for 60 test -S "/run/user/$RL_UID/systemd/private" || fail "no /run/user/$RL_UID/systemd/private after 60 s"
	ok "user@$RL_UID.service up, its private socket there ($(ms_since "$t") ms)"
	RL_MGR=/user.slice/user-$RL_UID.slice/user@$RL_UID.service
	[ -d "$CG$RL_MGR" ] || fail "no $CG$RL_MGR"
	echo "user@$RL_UID.service delegates: $(val "$CG$RL_MGR/cgroup.controllers") (Delegate=$(prop "user@$RL_UID.service" DelegateControllers))"
	echo "this unit's cgroup (the runtime's, as a login session's): $(cut -d: -f3- /proc/self/cgroup)"
}
delegated() { grep -qw "$1" "$CG$RL_MGR/cgroup.controllers"; }
scen_rootless() {
	local id=rl1 u=rtest-rl1.scope p d b pid cg out t want f lim=""
	rl_setup
	p=$RL_MGR/user.slice/$u d=$CG$p
	# the limits of the controllers the user's systemd has
	delegated memory && lim="$lim | .linux.resources.memory.limit = 67108864"
	delegated pids && lim="$lim | .linux.resources.pids.limit = 50"
	delegated cpu && lim="$lim | .linux.resources.cpu += {quota: 50000, period: 100000}"
	b=$(ubundle $id "$(args sh -c 'sleep 1000 & sleep 1000') $lim") || exit 1
	echo "config: $(jq -c '{uidMappings: .linux.uidMappings, gidMappings: .linux.gidMappings, cgroupsPath: .linux.cgroupsPath, resources: .linux.resources, ns: [.linux.namespaces[].type]}' "$b/config.json")"
	ucreate $id "$b"
	t=${EPOCHREALTIME/./}
	urt start $id || fail "start $id"
	ok "started $id ($(ms_since "$t") ms)"
	eq "status" "$(ustatus $id)" running
	eq "systemctl --user is-active $u" "$(uctl is-active $u)" active
	[ "$(prop $u LoadState)" = not-found ] || fail "$u known to the system manager too: $(prop $u LoadState)"
	ok "$u not a unit of the system manager"
	declare -A PROP
	uprops $u ControlGroup,Slice,Delegate,MemoryMax,TasksMax,CPUQuotaPerSecUSec
	eq "ControlGroup of $u (user's systemd)" "${PROP[ControlGroup]}" "$p"
	eq "Slice" "${PROP[Slice]}" user.slice
	eq "Delegate" "${PROP[Delegate]}" yes
	[ -d "$d" ] || fail "no cgroup directory $d"
	pid=$(urt state $id | jq -r .pid)
	eq "/proc/<init>/cgroup" "$(cat /proc/"$pid"/cgroup)" "0::$p"
	grep -qx "$pid" "$d/cgroup.procs" || fail "init $pid not in $d/cgroup.procs"
	ok "init $pid in $d/cgroup.procs"
	eq "owner of $d" "$(stat -c %u "$d")" "$RL_UID"
	if delegated memory; then
		eq "MemoryMax" "${PROP[MemoryMax]}" 67108864
		eq memory.max "$(val "$d/memory.max")" 67108864
	else echo "note: memory not delegated"; fi
	if delegated pids; then
		eq "TasksMax" "${PROP[TasksMax]}" 50
		eq pids.max "$(val "$d/pids.max")" 50
	else echo "note: pids not delegated"; fi
	if delegated cpu; then
		eq "CPUQuotaPerSecUSec" "${PROP[CPUQuotaPerSecUSec]}" 500ms
		eq cpu.max "$(val "$d/cpu.max")" "50000 100000"
	else echo "note: cpu not delegated"; fi
	# update: the user's systemd and the files
	if delegated memory && delegated pids; then
		urt update --memory 134217728 --pids-limit 80 $id || fail "update"
		uprops $u MemoryMax,TasksMax
		eq "MemoryMax after update" "${PROP[MemoryMax]}" 134217728
		eq "TasksMax after update" "${PROP[TasksMax]}" 80
		eq "memory.max after update" "$(val "$d/memory.max")" 134217728
		eq "pids.max after update" "$(val "$d/pids.max")" 80
		uctl daemon-reload || fail "systemctl --user daemon-reload"
		eq "memory.max after the user's daemon-reload" "$(val "$d/memory.max")" 134217728
	fi
	urt pause $id || fail "pause"
	wait_for 10 frozen_is "$d" 1 || fail "not frozen: $(val "$d/cgroup.events")"
	eq "status after pause" "$(ustatus $id)" paused
	urt resume $id || fail "resume"
	wait_for 10 frozen_is "$d" 0 || fail "still frozen: $(val "$d/cgroup.events")"
	eq "status after resume" "$(ustatus $id)" running
	wait_for 10 nprocs_ge "$d" 2 || fail "expected 2+ processes in $d (sh, sleep), got $(nprocs "$d")"
	urt kill --all $id KILL || fail "kill --all KILL"
	wait_for 10 uis_status $id stopped || fail "status $(ustatus $id) after kill --all"
	ok "stopped after kill --all"
	t=${EPOCHREALTIME/./}
	urt delete $id || fail "delete"
	ok "deleted ($(ms_since "$t") ms)"
	uleft $id $u "$d"

	# a limit whose controller the user's systemd does not have: refused
	# naming its field, nothing left
	for f in "cpuset linux.resources.cpu.cpus .linux.resources.cpu.cpus = \"0\"" \
		"io linux.resources.blockIO.weight .linux.resources.blockIO.weight = 500" \
		"memory linux.resources.memory.limit .linux.resources.memory.limit = 67108864" \
		"pids linux.resources.pids.limit .linux.resources.pids.limit = 50"; do
		set -- $f
		local c=$1 field=$2 filter=${f#* * } cid=rl-$1
		delegated "$c" && continue
		b=$(ubundle $cid "$(args sleep 1000) | $filter") || exit 1
		if urt create -b "$b" $cid </dev/null >"$W/$cid.create.out" 2>"$W/$cid.create.err"; then
			fail "create with $field (controller $c not delegated to the user) succeeded"
		fi
		out=$(cat "$W/$cid.create.err")
		echo "$c not delegated: create refused: $out"
		# husk names the field; another runtime (runc: the file) is only
		# held to refusing
		if [ "$RT_NAME" = husk ]; then
			echo "$out" | grep -qF "$field" || fail "the error does not name $field: $out"
			ok "the refusal names $field"
		else
			echo "$out" | grep -qE "$field|/$c\." || fail "the error names neither $field nor a $c file: $out"
			ok "the refusal names $field or a $c file"
		fi
		if [ "$RT_NAME" = husk ]; then
			echo "$out" | grep -q "controller is not delegated" || fail "husk's refusal does not say the $c controller is not delegated: $out"
			ok "husk says the controller is not delegated (refused before the unit exists)"
		fi
		uleft $cid rtest-$cid.scope "$CG$RL_MGR/user.slice/rtest-$cid.scope"
	done

	# no XDG_RUNTIME_DIR, no DBUS_SESSION_BUS_ADDRESS: the error says so
	id=rl3
	b=$(ubundle $id "$(args sleep 1000)") || exit 1
	mkdir -p "$W/rl-root" && chown "$RL_UID:$RL_GID" "$W/rl-root"
	if setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups --reset-env \
		"$RT" --rootless true --systemd-cgroup --root "$W/rl-root" create -b "$b" $id </dev/null >"$W/$id.create.out" 2>"$W/$id.create.err"; then
		fail "create without XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS succeeded"
	fi
	out=$(cat "$W/$id.create.err")
	echo "without the user's session: $out"
	# husk names what is missing; another runtime is only held to refusing
	if [ "$RT_NAME" = husk ]; then
		echo "$out" | grep -q XDG_RUNTIME_DIR || fail "the error does not name XDG_RUNTIME_DIR"
		echo "$out" | grep -q DBUS_SESSION_BUS_ADDRESS || fail "the error does not name DBUS_SESSION_BUS_ADDRESS"
		ok "the error names XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS"
	fi
	[ -z "$(ls -A "$W/rl-root")" ] || fail "state left in $W/rl-root: $(ls -A "$W/rl-root")"
	[ -z "$(uctl list-units --all --plain --no-legend "rtest-$id.scope" 2>/dev/null)" ] || fail "rtest-$id.scope in the user's systemd"
	ok "nothing left"

	# a second container after the first
	id=rl2 u=rtest-rl2.scope
	p=$RL_MGR/user.slice/$u d=$CG$p
	b=$(ubundle $id "$(args sleep 1000) $lim") || exit 1
	ucreate $id "$b"
	urt start $id || fail "start $id"
	eq "systemctl --user is-active $u" "$(uctl is-active $u)" active
	pid=$(urt state $id | jq -r .pid)
	eq "/proc/<init of $id>/cgroup" "$(cat /proc/"$pid"/cgroup)" "0::$p"
	# exec (last: the checks above do not depend on it)
	# exec: in the container's cgroup (with its cgroup namespace: its root)
	t=${EPOCHREALTIME/./}
	out=$(urt exec $id cat /proc/self/cgroup </dev/null 2>&1) || fail "exec: $out"
	ok "exec in $id ($(ms_since "$t") ms)"
	if jq -e '.linux.namespaces | map(.type) | index("cgroup")' "$b/config.json" >/dev/null; then want="0::/"; else want="0::$p"; fi
	eq "/proc/self/cgroup in the container (exec)" "$out" "$want"
	urt exec -d --pid-file "$W/rl/$id/exec.pid" $id sleep 999 </dev/null >/dev/null 2>"$W/$id.exec.err" ||
		fail "exec -d: $(cat "$W/$id.exec.err")"
	eq "/proc/<exec -d>/cgroup (host view)" "$(cat /proc/"$(cat "$W/rl/$id/exec.pid")"/cgroup)" "0::$p"
	# how it got there (husk: its --debug steps; the cgroup.procs write from
	# a cgroup the user does not own is refused, the user's systemd moves it)
	[ "$RT_NAME" = husk ] && urt --debug exec $id true </dev/null 2>&1 | grep -i -E 'cgroup|attach' | sed 's/^/exec --debug: /' | head -5
	t=${EPOCHREALTIME/./}
	urt delete --force $id || fail "delete --force $id"
	ok "delete --force ($(ms_since "$t") ms)"
	uleft $id $u "$d"

	# the session bus (dbus-user-session's $XDG_RUNTIME_DIR/bus) when
	# XDG_RUNTIME_DIR is not set: DBUS_SESSION_BUS_ADDRESS alone
	id=rl4 u=rtest-rl4.scope
	p=$RL_MGR/user.slice/$u d=$CG$p
	wait_for 30 test -S "/run/user/$RL_UID/bus" || fail "no session bus /run/user/$RL_UID/bus (dbus-user-session) after 30 s"
	# The session bus's dbus-daemon is socket-activated by its first
	# client, and the user's systemd connects to it only once that
	# dbus.service runs: here husk is that first client (nothing else in
	# the guest talks to the session bus), so it must wait for systemd to
	# take org.freedesktop.systemd1 there (up to 10 s) rather than fail
	# with "no org.freedesktop.systemd1 on the bus" as it did in CI.
	b=$(ubundle $id "$(args sleep 1000) $lim") || exit 1
	t=${EPOCHREALTIME/./}
	if ! setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups --reset-env env DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$RL_UID/bus" \
		"$RT" --rootless true --systemd-cgroup --root "$W/rl-root" create -b "$b" $id </dev/null >"$W/$id.create.out" 2>"$W/$id.create.err"; then
		# why, for the next engineer: the user's bus units, the names on
		# the bus, and what the user's dbus and systemd logged
		echo "$(el) user units: $(uctl show -p Id -p ActiveState -p SubState -p Result dbus.socket dbus.service 2>&1 | paste -sd ' ')"
		echo "$(el) names on the bus: $(asuser busctl --address="unix:path=/run/user/$RL_UID/bus" list --no-pager --no-legend 2>&1 | awk '{print $1}' | paste -sd ' ' | head -c 400)"
		echo "$(el) journal: $(journalctl -q --no-pager -n 12 _UID="$RL_UID" 2>&1 | paste -sd '|' | head -c 1500)"
		fail "create with DBUS_SESSION_BUS_ADDRESS only (the session bus activated by it): $(paste -sd ' ' "$W/$id.create.err" | head -c 600)"
	fi
	ok "created $id through the session bus ($(ms_since "$t") ms)"
	eq "systemctl --user is-active $u" "$(uctl is-active $u)" active
	pid=$(setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups --reset-env "$RT" --root "$W/rl-root" state $id | jq -r .pid)
	eq "/proc/<init of $id>/cgroup" "$(cat /proc/"$pid"/cgroup)" "0::$p"
	delegated memory && eq "memory.max of $id" "$(val "$d/memory.max")" 67108864
	setpriv --reuid="$RL_UID" --regid="$RL_GID" --init-groups --reset-env env DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$RL_UID/bus" \
		"$RT" --rootless true --systemd-cgroup --root "$W/rl-root" delete --force $id || fail "delete --force $id (session bus)"
	wait_for 10 uunit_gone $u || fail "$u still known to the user's systemd"
	[ ! -e "$d" ] || fail "$d left behind"
	[ -z "$(ls -A "$W/rl-root")" ] || fail "state left in $W/rl-root: $(ls -A "$W/rl-root")"
	ok "$id: no unit, no cgroup, no state left"
}
cleanup_rootless() {
	local uid id u
	uid=$(id -u $RL_USER 2>/dev/null) || return 0
	RL_UID=$uid RL_GID=$(id -g $RL_USER)
	for id in $(urt list -q 2>/dev/null); do urt delete --force "$id" >/dev/null 2>&1; done
	for id in $(asuser "$RT" --root "$W/rl-root" list -q 2>/dev/null); do asuser "$RT" --rootless true --systemd-cgroup --root "$W/rl-root" delete --force "$id" >/dev/null 2>&1; done
	for u in $(uctl list-units --all --plain --no-legend "rtest-*.scope" 2>/dev/null | awk '{print $1}'); do
		echo "cleanup: stopping leftover unit $u of the user's systemd"
		uctl stop "$u"
	done
	systemctl stop "user@$uid.service"
}
export RL_USER
export -f asuser urt uctl uprop uprops ustatus uis_status uunit_gone ms_since ubundle ucreate uleft rl_setup delegated

# hybrid_driver (hybrid boot): the scope on a v1 + unified host. The v1
# names of the properties (MemoryLimit, CPUShares: systemd applies CPUWeight
# as shares = weight x 1024 / 100 there), the init in the scope in every
# hierarchy (systemd's, and the ones it does not manage, which husk makes),
# a strict device policy, the files; update + daemon-reload; pause/resume
# through the v1 freezer; kill, delete: no unit, no directory left in any
# hierarchy.
v1_path() { awk -F: -v c="$2" '{n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3}' /proc/"$1"/cgroup; }
scen_hybrid_driver() {
	local id=hy u=rtest-hy.scope p=/system.slice/rtest-hy.scope pid c got
	up $id "$LIMITS | $(args sh -c 'sleep 1000 & sleep 1000')"
	eq "status" "$(status $id)" running
	eq "systemctl is-active $u" "$(systemctl is-active $u)" active
	declare -A PROP
	props $u ControlGroup,Delegate,MemoryLimit,TasksMax,CPUShares,CPUQuotaPerSecUSec,DevicePolicy
	eq "ControlGroup" "${PROP[ControlGroup]}" $p
	eq "Delegate" "${PROP[Delegate]}" yes
	eq "MemoryLimit" "${PROP[MemoryLimit]}" 67108864
	eq "TasksMax" "${PROP[TasksMax]}" 50
	eq "CPUShares" "${PROP[CPUShares]}" 512
	eq "CPUQuotaPerSecUSec" "${PROP[CPUQuotaPerSecUSec]}" 500ms
	eq "DevicePolicy" "${PROP[DevicePolicy]}" strict
	pid=$(initpid $id)
	sed 's/^/init cgroup: /' /proc/"$pid"/cgroup
	eq "init's name=systemd cgroup" "$(v1_path "$pid" name=systemd)" $p
	for c in memory pids cpu cpuset freezer devices blkio; do
		[ -d "$CG/$c" ] || { echo "note: no $c hierarchy"; continue; }
		got=$(v1_path "$pid" $c)
		eq "init's $c cgroup" "$got" $p
		grep -qx "$pid" "$CG/$c$p/cgroup.procs" || fail "init not in $CG/$c$p/cgroup.procs"
	done
	eq memory.limit_in_bytes "$(val "$CG/memory$p/memory.limit_in_bytes")" 67108864
	eq memory.soft_limit_in_bytes "$(val "$CG/memory$p/memory.soft_limit_in_bytes")" 33554432
	eq pids.max "$(val "$CG/pids$p/pids.max")" 50
	eq cpu.shares "$(val "$CG/cpu$p/cpu.shares")" 512
	eq cpu.cfs_quota_us "$(val "$CG/cpu$p/cpu.cfs_quota_us")" 50000
	eq cpuset.cpus "$(val "$CG/cpuset$p/cpuset.cpus")" 0
	got=$(val "$CG/devices$p/devices.list")
	case $got in *"a *:* rwm"*) fail "devices.list allows everything: $got" ;; esac
	ok "devices.list is the container's rules ($(echo "$got" | wc -l) lines)"
	rt update --memory 134217728 --pids-limit 80 $id || fail "update"
	props $u MemoryLimit,TasksMax
	eq "MemoryLimit after update" "${PROP[MemoryLimit]}" 134217728
	eq "TasksMax after update" "${PROP[TasksMax]}" 80
	systemctl daemon-reload || fail "daemon-reload"
	eq "memory.limit_in_bytes after update + daemon-reload" "$(val "$CG/memory$p/memory.limit_in_bytes")" 134217728
	eq "pids.max after update + daemon-reload" "$(val "$CG/pids$p/pids.max")" 80
	eq "cpu.shares after daemon-reload" "$(val "$CG/cpu$p/cpu.shares")" 512
	got=$(val "$CG/devices$p/devices.list")
	case $got in *"a *:* rwm"*) fail "devices.list allows everything after daemon-reload: $got" ;; esac
	ok "devices.list still the container's rules after daemon-reload"
	rt pause $id || fail "pause"
	eq "status after pause" "$(status $id)" paused
	eq freezer.state "$(val "$CG/freezer$p/freezer.state")" FROZEN
	rt resume $id || fail "resume"
	eq "status after resume" "$(status $id)" running
	eq "freezer.state after resume" "$(val "$CG/freezer$p/freezer.state")" THAWED
	rt kill --all $id KILL || fail "kill --all"
	wait_for 10 is_status $id stopped || fail "status $(status $id) after kill"
	rt delete $id || fail "delete"
	wait_for 10 unit_gone $u || fail "$u still known to systemd"
	ok "$u gone"
	for c in $(ls $CG); do
		[ -e "$CG/$c$p" ] && fail "$CG/$c$p left behind"
	done
	ok "no $p directory in any hierarchy"
	[ ! -e "$ROOT/$id" ] || fail "state $ROOT/$id left behind"
	ok "no state left"
}

# timing: `run` of /bin/true with the systemd driver (a scope started over
# D-Bus, a memory limit, the scope stopped at delete), TIMING_RUNS rounds,
# the runtime under test, crun and runc interleaved in each round; prints
# each one's mean and median and the ratios. A benchmark: it fails only
# when a run fails.
scen_timing() {
	local n=${RTEST_TIMING_RUNS:-10} i r name b t0 t1 bins="" names=""
	declare -A T
	for r in "$RT" "$(command -v crun)" "$(command -v runc)"; do
		[ -n "$r" ] && [ -x "$r" ] || continue
		name=$(basename "$r"); [ "$r" = "$RT" ] && name=$RT_NAME
		case " $names " in *" $name "*) continue ;; esac
		bins="$bins $r" names="$names $name"
	done
	ok "runtimes:$names; $n rounds"
	# each runtime's bare process cost here (warm): `--version`, 5 times
	for r in $bins; do
		name=$(basename "$r"); [ "$r" = "$RT" ] && name=$RT_NAME
		local vs=""
		for i in 1 2 3 4 5 6; do
			t0=${EPOCHREALTIME/./}; "$r" --version >/dev/null 2>&1; t1=${EPOCHREALTIME/./}
			[ "$i" = 1 ] || vs="$vs $(((t1 - t0) / 1000))"
		done
		echo "timing: $name --version (warm, ms):$vs"
	done
	for i in $(seq "$n"); do
		for r in $bins; do
			name=$(basename "$r"); [ "$r" = "$RT" ] && name=$RT_NAME
			b=$(bundle "t$name$i" "$(args /bin/true) | .linux.resources.memory.limit = 67108864 | .linux.cgroupsPath = \"system.slice:rtime:$name$i\"")
			t0=${EPOCHREALTIME/./}
			"$r" --root "$ROOT-$name" --systemd-cgroup run -b "$b" "t$name$i" </dev/null >/dev/null 2>"$W/t$name$i.err" ||
				fail "$name run $i: $(head -c 300 "$W/t$name$i.err")"
			t1=${EPOCHREALTIME/./}
			T[$name]="${T[$name]:-} $(((t1 - t0) / 1000))"
		done
	done
	local line="" base=""
	for name in $names; do
		# mean and median in ms
		read -r mean med < <(printf '%s\n' ${T[$name]} | sort -n | awk '{a[NR] = $1; s += $1} END {printf "%d %d\n", s / NR, a[int((NR + 1) / 2)]}')
		echo "timing: $name run (systemd driver): mean $mean ms, median $med ms over $n (${T[$name]# })"
		line="$line $name=$mean"
	done
	local mine crun_m runc_m
	mine=$(echo "$line" | tr ' ' '\n' | awk -F= -v n="$RT_NAME" '$1 == n {print $2}')
	crun_m=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "crun" {print $2}')
	runc_m=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "runc" {print $2}')
	[ -n "$crun_m" ] && echo "timing: $RT_NAME / crun = $(awk -v a="$mine" -v b="$crun_m" 'BEGIN {printf "%.2f", a / b}')"
	[ -n "$runc_m" ] && echo "timing: $RT_NAME / runc = $(awk -v a="$mine" -v b="$runc_m" 'BEGIN {printf "%.2f", a / b}')"
	# where the runtime under test spends it: one run with --debug (husk's
	# step timeline; other runtimes print what they print)
	b=$(bundle tdebug "$(args /bin/true) | .linux.resources.memory.limit = 67108864 | .linux.cgroupsPath = \"system.slice:rtime:debug\"")
	t0=${EPOCHREALTIME/./}
	"$RT" --debug --root "$ROOT-$RT_NAME" --systemd-cgroup run -b "$b" tdebug </dev/null >/dev/null 2>"$W/tdebug.err" ||
		fail "$RT_NAME --debug run: $(head -c 300 "$W/tdebug.err")"
	t1=${EPOCHREALTIME/./}
	echo "timing: one $RT_NAME --debug run: $(((t1 - t0) / 1000)) ms"
	sed -n 's/.*msg="\(step [^"]*\|[^"]*scope[^"]*\|[^"]*systemd[^"]*\|[^"]*D-Bus[^"]*\)".*/timing:   \1/p' "$W/tdebug.err" | head -150
	ok "timing done"
}

# The managers, each with its default systemd cgroup driver (managers.sh);
# cleanup_NAME runs after scenario NAME however it ended (even killed at
# its bound): the daemons, their containers and mounts go
scen_docker() { source "$RTEST_DIR/managers.sh" && sd_docker; }
scen_podman() { source "$RTEST_DIR/managers.sh" && sd_podman; }
scen_containerd() { source "$RTEST_DIR/managers.sh" && sd_containerd; }
scen_cri() { source "$RTEST_DIR/managers.sh" && sd_cri; }
cleanup_docker() { source "$RTEST_DIR/managers.sh" && mgr_cleanup docker "$1"; }
cleanup_podman() { source "$RTEST_DIR/managers.sh" && mgr_cleanup podman "$1"; }
cleanup_containerd() { source "$RTEST_DIR/managers.sh" && mgr_cleanup containerd "$1"; }
cleanup_cri() { source "$RTEST_DIR/managers.sh" && mgr_cleanup cri "$1"; }

# ---- setup and run ----
plan=$(selected)
unchecked() {
	local s
	for s in $plan; do echo "UNCHECKED $s: $*"; done
	exit 1
}
[ -x "$RT" ] || unchecked "no runtime binary $RT in the guest"
case " $plan " in
*" hybrid_"*)
	[ "$(stat -fc %T $CG)" = tmpfs ] && [ "$(stat -fc %T $CG/unified 2>/dev/null)" = cgroup2fs ] ||
		unchecked "not a hybrid layout: $CG is $(stat -fc %T $CG), $CG/unified $(stat -fc %T $CG/unified 2>&1)" ;;
*) [ "$(stat -fc %T $CG)" = cgroup2fs ] || unchecked "$CG is not cgroup2 ($(stat -fc %T $CG))" ;;
esac
[ "$(cat /proc/1/comm)" = systemd ] || unchecked "PID 1 is $(cat /proc/1/comm), not systemd"
systemctl is-active -q dbus.service || unchecked "dbus.service is $(systemctl is-active dbus.service)"
echo "systemd-guest: $(uname -r), $(systemctl --version | sed -n 1p), controllers: $(cat $CG/cgroup.controllers 2>/dev/null || ls $CG | paste -sd ' ')"
echo "systemd-guest: runtime $RT ($("$RT" --version 2>&1 | sed -n 1p)), unit prefix for an empty cgroupsPath: $RT_NAME"
rm -rf "$W"
mkdir -p "$W/rootfs"/{bin,proc,sys,dev,tmp,etc} "$ROOT"
cp /bin/busybox "$W/rootfs/bin/busybox" || unchecked "no /bin/busybox (busybox-static)"
chroot "$W/rootfs" /bin/busybox --install -s /bin || unchecked "busybox --install"
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
"$RT" spec -b "$W" >/dev/null 2>&1 || unchecked "$RT_NAME spec failed"
jq '.process.terminal = false' "$W/config.json" > "$W/spec.json" && rm "$W/config.json" || unchecked "jq on the spec"
echo "systemd-guest: spec namespaces: $(jq -c '[.linux.namespaces[].type]' "$W/spec.json")"
# what one call costs here (TCG): systemctl, and the runtime's own start-up
t0=${EPOCHREALTIME/./}; systemctl show -P ActiveState dbus.service >/dev/null; t1=${EPOCHREALTIME/./}
"$RT" --version >/dev/null 2>&1; t2=${EPOCHREALTIME/./}
echo "systemd-guest: one systemctl show: $(((t1 - t0) / 1000)) ms, one $RT_NAME --version: $(((t2 - t1) / 1000)) ms"
echo "systemd-guest: setup done at $(cut -d' ' -f1 /proc/uptime)s of guest uptime"

export -f v1_path $(compgen -A function scen_) $(compgen -A function cleanup_)
pass=0 failed=""
for s in $plan; do
	bound=${BOUND[$s]:-120}
	t0=$(date +%s.%N)
	export SCEN_T0=${EPOCHREALTIME/./}
	timeout -k 5 "$bound" bash -c "scen_$s" > "$W/$s.log" 2>&1
	rc=$?
	t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	if [ $rc = 3 ] && grep -q '^\[[0-9.]*s\] UNCHECKED: ' "$W/$s.log"; then
		echo "UNCHECKED $s: $(grep '^\[[0-9.]*s\] UNCHECKED: ' "$W/$s.log" | tail -1 | sed 's/^\[[0-9.]*s\] UNCHECKED: //')"
		failed="$failed $s"
	elif [ $rc = 0 ]; then
		echo "PASS $s (${t}s)"
		[ "${RTEST_VERBOSE:-0}" = 1 ] && sed 's/^/    | /' "$W/$s.log"
		pass=$((pass + 1))
	else
		why=$(grep '^\[[0-9.]*s\] FAILED: ' "$W/$s.log" | tail -1 | sed 's/^\[[0-9.]*s\] FAILED: //')
		{ [ $rc = 124 ] || [ $rc = 137 ]; } && why="timed out after ${bound}s${why:+; last: $why}"
		echo "FAIL $s: ${why:-exit $rc} (${t}s)"
		sed 's/^/    | /' "$W/$s.log"
		failed="$failed $s"
	fi
	# clean up whatever the scenario left (after its own checks): a manager
	# and its containers, containers, then units (a runtime that leaves them
	# must not break the next scenario)
	if declare -F "cleanup_$s" >/dev/null; then
		t0=$SECONDS
		timeout -k 5 90 bash -c "cleanup_$s $rc" _ >>"$W/$s.cleanup.log" 2>&1 ||
			echo "    | cleanup of $s: exit $? (see $W/$s.cleanup.log)"
		echo "    | cleanup of $s: $((SECONDS - t0)) s"
	fi
	for id in $(rtn list -q 2>/dev/null); do rt delete --force "$id" >/dev/null 2>&1 || rtn delete --force "$id" >/dev/null 2>&1; done
	for u in $(systemctl list-units --all --plain --no-legend "rtest-*.scope" "$RT_NAME-*.scope" \
		"docker-*.scope" "libpod-*.scope" "ctr-*.scope" "cri-containerd-*.scope" 2>/dev/null | awk '{print $1}'); do
		echo "    | cleanup: stopping leftover unit $u"
		systemctl stop "$u" 2>/dev/null
	done
done
echo "systemd-guest: $pass passed, failed:${failed:- none}"
[ -z "$failed" ]
