# Docker, podman, containerd and containerd's CRI plugin in the systemd guest, each with its default
# systemd cgroup driver, driving the runtime under test through the managers
# bed's argv-logging wrapper. Sourced by the docker, podman and containerd
# scenarios of scenarios.sh (each in its own bash, after scenarios.sh's
# helpers: eq, ok, fail, prop, props, unit_gone), which then call
# sd_docker, sd_podman or sd_containerd; mgr_cleanup MGR (run by
# scenarios.sh after the scenario, however it ended) tears the manager down.
#
# What is reused from integration/managers (the cgroupfs bed of this host),
# not copied: the wrapper (wrapper.sh), each manager's start-up and teardown
# with its own root, state and socket (docker.sh, podman.sh, containerd.sh:
# here their cgroup settings are the systemd ones), the busybox image
# (mkimage.sh, built on the host by run.sh: RTEST_IMAGE), the shared
# run/exit-code scenarios (cli.sh's s_run_exit, containerd.sh's cd_run_exit)
# and lib.sh's helpers. Each manager's files live on a tmpfs of its own
# (the overlay root cannot be an upper layer of the managers' overlays).

MGR_ROOT=/var/lib/rtest-managers

# mgr_env MGR: the managers bed's globals for MGR, its helpers and its script
mgr_env() {
	MGR=$1
	HERE=$(cd "$RTEST_DIR/../managers" && pwd)
	REPO=$(cd "$RTEST_DIR/../.." && pwd)
	RUNTIME=$RT_NAME RT_BIN=$RT
	OUT=$MGR_ROOT/$MGR
	WRAP=$OUT/bin/$RT_NAME-logged
	ARGV_LOG=$OUT/argv.log PIDS_FILE=$OUT/daemons.pids RESULTS=$OUT/results.tsv
	IMAGE_DIR=${RTEST_IMAGE:-$REPO/build/managers/image}
	export MGR HERE REPO RUNTIME RT_BIN OUT WRAP ARGV_LOG PIDS_FILE RESULTS IMAGE_DIR
	# a daemon's start under TCG (dockerd 6-12 s, more when the host is busy)
	START_WAIT=90 STEP_TIMEOUT=120
	# shellcheck source=../managers/lib.sh
	source "$HERE/lib.sh"
	# shellcheck source=../managers/wrapper.sh
	source "$HERE/wrapper.sh"
	case $MGR in
	docker)
		# Docker's default on cgroup v2 with systemd, said explicitly (and no
		# cgroup-parent: system.slice, Docker's default)
		DOCKER_CGROUP_JSON='  "exec-opts": ["native.cgroupdriver=systemd"]' ;;
	cri)
		# the kubelet's default driver, as kubeadm sets containerd up:
		# SystemdCgroup = true, pods under kubepods-burstable-pod<uid>.slice;
		# pods on the node's network (the guest has no bridge for CNI)
		SYSTEMD_CGROUP=true CRI_CGROUP_ROOT=kubepods CRI_HOST_NETWORK=1 ;;
	podman)
		# podman's default cgroup manager (podman.sh names husk in
		# runtime_supports_json, as the README tells users to)
		PODMAN_CGROUP_MANAGER=systemd ;;
	esac
	# shellcheck disable=SC1090
	source "$HERE/$MGR.sh"
}

# mgr_start: the manager's tmpfs, a fresh argv log and the wrapper
mgr_start() {
	local bin=$1
	command -v "$bin" >/dev/null || unchecked_here "no $bin in the guest (the host's package)"
	[ -s "$IMAGE_DIR/rootfs.tar" ] && [ -s "$IMAGE_DIR/oci-image.tar" ] ||
		unchecked_here "no test image in $IMAGE_DIR (run.sh builds it on the host)"
	mkdir -p "$OUT"
	mountpoint -q "$OUT" || mount -t tmpfs -o mode=755,size=384m tmpfs "$OUT" || fail "tmpfs on $OUT"
	: >"$PIDS_FILE"
	: >"$ARGV_LOG"
	write_argv_wrapper "$WRAP" "$RT_BIN" "$ARGV_LOG"
	ok "$MGR's files on a tmpfs at $OUT, the runtime behind $WRAP"
}
# a scenario that cannot run here: exit 3, scenarios.sh prints UNCHECKED
unchecked_here() {
	echo "$(el) UNCHECKED: $*"
	exit 3
}

# shared FUNC: one of the managers bed's scenario functions, with its set -e
# semantics (a subshell not tested by || or if, where -e would be ignored)
shared() {
	local rc
	(
		set -eo pipefail
		"$@"
	) >"$OUT/$1.out" 2>&1
	rc=$?
	sed 's/^/    | /' "$OUT/$1.out"
	[ $rc = 0 ] || fail "$* (integration/managers) failed: $(grep -E '^(FAIL|TIMEOUT)' "$OUT/$1.out" | tail -1)"
	ok "$* (integration/managers) passed"
}

# mgr_limits UNIT CGPATH PID MEMORY [PIDS]: the container (init PID) runs in
# the active transient UNIT at CGPATH (from /sys/fs/cgroup, leading /), the
# unit has Delegate=yes and the limits, and so do the cgroup files
mgr_limits() {
	local u=$1 p=$2 pid=$3 mem=$4 pids=${5:-} cg d=$CG$2
	eq "systemctl is-active $u" "$(systemctl is-active "$u")" active
	declare -A PROP
	props "$u" ControlGroup,Slice,Delegate,MemoryMax,TasksMax,MemorySwapMax
	eq "ControlGroup of $u" "${PROP[ControlGroup]}" "$p"
	eq "Delegate" "${PROP[Delegate]}" yes
	eq "MemoryMax" "${PROP[MemoryMax]}" "$mem"
	[ -z "$pids" ] || eq "TasksMax" "${PROP[TasksMax]}" "$pids"
	cg=$(cat /proc/"$pid"/cgroup)
	case $cg in
	"0::$p") ok "/proc/<init>/cgroup = '$cg': directly in the scope" ;;
	"0::$p"/*) ok "/proc/<init>/cgroup = '$cg': in a sub-cgroup of the scope" ;;
	*) fail "/proc/<init>/cgroup: got '$cg', want '0::$p' (or below)" ;;
	esac
	eq memory.max "$(val "$d/memory.max")" "$mem"
	[ -z "$pids" ] || eq pids.max "$(val "$d/pids.max")" "$pids"
	echo "note: MemorySwapMax=${PROP[MemorySwapMax]}, memory.swap.max=$(val "$d/memory.swap.max")"
}

# mgr_exec_cgroup OUTPUT PID CGPATH: what `cat /proc/self/cgroup` printed in
# an exec: 0::/ in a cgroup namespace, else the init's cgroup
mgr_exec_cgroup() {
	case $1 in
	"0::/") ok "exec: /proc/self/cgroup = '0::/' (a cgroup namespace)" ;;
	"0::$3" | "0::$3"/*) ok "exec: /proc/self/cgroup = '$1' (no cgroup namespace)" ;;
	*) fail "exec: /proc/self/cgroup = '$1', want 0::/ or 0::$3" ;;
	esac
}

# mgr_gone UNIT CGPATH PATTERN: after the container is removed, UNIT is gone
# for systemd, CGPATH is gone, and so is every unit and cgroup matching
# PATTERN (the manager's earlier containers too); the runtime lists no
# container under any --root the manager gave it (or its default root)
mgr_gone() {
	local u=$1 p=$2 pat=$3 left r roots
	wait_for 20 unit_gone "$u" ||
		fail "$u still known to systemd: LoadState=$(prop "$u" LoadState) ActiveState=$(prop "$u" ActiveState)"
	ok "$u gone (LoadState=not-found, not in list-units)"
	wait_for 10 test ! -e "$CG$p" || fail "$CG$p left behind"
	ok "$CG$p gone"
	# (conmon's scope, for one, goes when conmon has exited)
	wait_for 20 none_matching "$pat" || fail "left behind: $(none_matching "$pat" 2>&1)"
	ok "no unit and no cgroup $pat left"
	roots=$(grep -o -- ' --root [^ ]*' "$ARGV_LOG" | awk '{print $2}' | sort -u)
	for r in "" $roots; do
		[ -z "$r" ] || [ -d "$r" ] || continue
		left=$("$RT" ${r:+--root "$r"} list -q 2>/dev/null)
		[ -z "$left" ] || fail "$RT_NAME list${r:+ --root $r}: $left left"
	done
	ok "no container state left ($RT_NAME list, roots:${roots:- default})"
}

# none_matching PATTERN: no unit, no cgroup directory matching PATTERN
# (else says which, on stderr)
none_matching() {
	local units dirs
	units=$(systemctl list-units --all --plain --no-legend "$1" 2>&1)
	dirs=$(find "$CG" -name "$1" 2>/dev/null)
	[ -z "$units$dirs" ] && return 0
	echo "units: ${units:-none}; cgroups: ${dirs:-none}" | tr '\n' ' ' >&2
	return 1
}

# mgr_argv: what the manager passed to the runtime, verb by verb, with or
# without --systemd-cgroup (logged; the argv log is also copied to the
# host's run directory), then: every create has --systemd-cgroup, and with
# FLAG_ALL every command but `delete --force` has it (Docker, containerd's
# shim; podman passes it on create only)
mgr_argv() {
	local all=${1:-} summary bad
	cp "$ARGV_LOG" "/mnt/rtest/argv-$MGR.log" 2>/dev/null
	summary=$(awk '/^  / { next } {
		sd = 0; verb = ""
		for (i = 5; i <= NF; i++) {
			a = $i
			if (a == "--systemd-cgroup" || a == "--systemd-cgroup=true") { sd = 1; continue }
			if (a ~ /^--(root|log|log-format|rootless|criu)$/) { i++; continue }
			if (a ~ /^-/) continue
			verb = a; break
		}
		if (verb == "" && $NF == "--version") verb = "--version"
		if (verb == "delete") for (j = i + 1; j <= NF; j++) if ($j == "--force" || $j == "-f") verb = "delete --force"
		n[verb " " (sd ? "with" : "without")]++
	} END { for (k in n) print k, n[k] }' "$ARGV_LOG" | sort)
	echo "$summary" | sed "s/^/argv ($MGR): /; s/ with / with --systemd-cgroup: /; s/ without / without --systemd-cgroup: /"
	echo "$summary" | grep -q '^create with ' || fail "no create with --systemd-cgroup in $ARGV_LOG"
	bad=$(echo "$summary" | awk '$1 == "create" && $2 == "without"')
	[ -z "$bad" ] || fail "create without --systemd-cgroup: $bad"
	ok "every create has --systemd-cgroup"
	if [ "$all" = FLAG_ALL ]; then
		bad=$(echo "$summary" | awk '$NF != "" && $(NF - 1) == "without" && $0 !~ /^delete --force / && $1 != "features"')
		[ -z "$bad" ] || fail "commands without --systemd-cgroup: $bad"
		ok "every command but delete --force has --systemd-cgroup"
	fi
}

# mgr_cleanup MGR RC: the manager's daemons stopped by pid, leftover shims
# and conmons killed, mounts and its tmpfs gone; after a scenario that did
# not pass (RC not 0), first the bed's teardown (its containers removed
# through the manager: a passing scenario checked that none is left, and
# each podman command costs seconds under TCG)
mgr_cleanup() {
	mgr_env "$1"
	[ -d "$OUT" ] || return 0
	cp "$ARGV_LOG" "/mnt/rtest/argv-$MGR.log" 2>/dev/null
	[ "${2:-1}" = 0 ] || "${MGR}_teardown" >/dev/null 2>&1
	kill_registered
	kill_mentioning "$OUT/"
	umount_under "$OUT/"
	umount "$OUT" 2>/dev/null || umount -l "$OUT" 2>/dev/null
	rmdir "$OUT" 2>/dev/null
	return 0
}

sd_docker() {
	local id u p pid out rc
	mgr_env docker
	mgr_start dockerd
	docker_setup || fail "dockerd did not start or import: $(tail -5 "$MDIR/dockerd.log" | paste -sd ' ')"
	ok "dockerd up ($(cli version -f '{{.Server.Version}}')), image imported"
	eq "docker info CgroupDriver, CgroupVersion" "$(cli info -f '{{.CgroupDriver}} {{.CgroupVersion}}')" "systemd 2"
	shared s_run_exit
	cli run -d --name sd-lim $RUN_FLAGS --memory 64m --memory-swap 64m --pids-limit 50 "$IMG" sleep 1000 ||
		fail "docker run -d with --memory 64m --pids-limit 50"
	id=$(cli inspect -f '{{.Id}}' sd-lim) pid=$(pid_of sd-lim)
	u=docker-$id.scope p=/system.slice/docker-$id.scope
	ok "running: $id, init $pid"
	mgr_limits "$u" "$p" "$pid" 67108864 50
	out=$(cli exec sd-lim cat /proc/self/cgroup 2>&1) || fail "docker exec: $out"
	mgr_exec_cgroup "$out" "$pid" "$p"
	rc=0
	cli exec sd-lim sh -c 'exit 7' || rc=$?
	eq "exec exit code" "$rc" 7
	cli update --memory 128m --memory-swap 128m --pids-limit 80 sd-lim || fail "docker update"
	ok "docker update --memory 128m --memory-swap 128m --pids-limit 80"
	mgr_limits "$u" "$p" "$pid" 134217728 80
	cli stop -t 1 sd-lim >/dev/null || fail "docker stop"
	cli rm sd-lim >/dev/null || fail "docker rm"
	ok "stopped and removed"
	mgr_gone "$u" "$p" 'docker-*.scope'
	mgr_argv FLAG_ALL
}

sd_podman() {
	local id u p pid out rc pids=50
	mgr_env podman
	mgr_start podman
	podman_setup || fail "podman did not import or does not use $WRAP"
	ok "podman set up, image imported"
	# (podman_setup's podman info)
	eq "podman info cgroupManager" "$(jq -r .host.cgroupManager "$MDIR/info.json")" systemd
	eq "podman info cgroupVersion" "$(jq -r .host.cgroupVersion "$MDIR/info.json")" v2
	shared s_run_exit
	cli run -d --name sd-lim $RUN_FLAGS --memory 64m --memory-swap 64m --pids-limit 50 "$IMG" sleep 1000 ||
		fail "podman run -d with --memory 64m --pids-limit 50"
	id=$(cli inspect -f '{{.Id}}' sd-lim) pid=$(pid_of sd-lim)
	u=libpod-$id.scope p=/machine.slice/libpod-$id.scope
	ok "running: $id, init $pid"
	mgr_limits "$u" "$p" "$pid" 67108864 50
	echo "note: conmon's unit libpod-conmon-$id.scope is $(systemctl is-active "libpod-conmon-$id.scope")"
	out=$(cli exec sd-lim cat /proc/self/cgroup 2>&1) || fail "podman exec: $out"
	mgr_exec_cgroup "$out" "$pid" "$p"
	rc=0
	cli exec sd-lim sh -c 'exit 7' || rc=$?
	eq "exec exit code" "$rc" 7
	if [ "$UPDATE_PIDS" = 1 ]; then
		cli update --memory 128m --memory-swap 128m --pids-limit 80 sd-lim || fail "podman update"
		pids=80
	else
		cli update --memory 128m --memory-swap 128m sd-lim || fail "podman update"
		echo "note: podman $(podman --version | awk '{print $NF}') update has no --pids-limit"
	fi
	ok "podman update --memory 128m --memory-swap 128m"
	mgr_limits "$u" "$p" "$pid" 134217728 "$pids"
	cli stop -t 1 sd-lim >/dev/null || fail "podman stop"
	cli rm sd-lim >/dev/null || fail "podman rm"
	ok "stopped and removed"
	mgr_gone "$u" "$p" 'libpod-*.scope'
	mgr_argv
}

sd_containerd() {
	local u=ctr-sd-lim.scope p=/system.slice/ctr-sd-lim.scope pid out rc
	mgr_env containerd
	# ctr run with the systemd driver: the shim passes --systemd-cgroup, the
	# cgroupsPath is --cgroup (ctr requires one): system.slice:ctr:<id>
	crun_() {
		local a prev="" id=""
		for a in "$@"; do
			[ "$prev" = "$IMG" ] && { id=$a; break; }
			prev=$a
		done
		ctr_ run --runc-binary "$WRAP" --runc-root "$CD_DIR/runc-root" \
			--runc-systemd-cgroup --cgroup "system.slice:ctr:$id" "$@"
	}
	mgr_start containerd
	containerd_setup || fail "containerd did not start or import: $(tail -5 "$CD_DIR/containerd.log" | paste -sd ' ')"
	ok "containerd up ($(ctr_ version | awk '/Version:/ {v = $2} END {print v}')), image imported"
	shared cd_run_exit
	run_bg sd-lim --memory-limit 67108864 "$IMG" sd-lim sleep 1000 || fail "ctr run -d --memory-limit 64M"
	pid=$(task_pid sd-lim)
	ok "running: init $pid"
	mgr_limits "$u" "$p" "$pid" 67108864
	out=$(ctr_ task exec --exec-id e1 sd-lim cat /proc/self/cgroup 2>&1) || fail "ctr task exec: $out"
	mgr_exec_cgroup "$out" "$pid" "$p"
	rc=0
	ctr_ task exec --exec-id e2 sd-lim sh -c 'exit 7' || rc=$?
	eq "exec exit code" "$rc" 7
	# ctr 1.6 has no "task update": the runtime's update as the shim (and so
	# the CRI's UpdateContainerResources) calls it, JSON on stdin
	echo '{"memory":{"limit":134217728},"pids":{"limit":80}}' |
		"$WRAP" --root "$CD_DIR/runc-root/$CD_NS" --log "$CD_DIR/update-log.json" --log-format json \
			--systemd-cgroup update --resources - sd-lim || fail "update --resources - (as the shim)"
	ok "updated as the shim does: memory 128M, pids 80"
	mgr_limits "$u" "$p" "$pid" 134217728 80
	ctr_ task kill -s KILL sd-lim || fail "ctr task kill"
	wait_for 20 gone_or_stopped sd-lim || fail "task still $(task_status sd-lim) after KILL"
	ctr_ task rm sd-lim >/dev/null || fail "ctr task rm"
	ctr_ c rm sd-lim || fail "ctr container rm"
	ok "killed and removed"
	mgr_gone "$u" "$p" 'ctr-*.scope'
	mgr_argv FLAG_ALL
}

# containerd's CRI plugin with SystemdCgroup = true, driven by the kubelet-like
# client (integration/cri, built on the host): each client scenario makes a
# pod, checks, removes it; then no cri-containerd scope, no kubepods pod
# slice cgroup, no state is left
sd_cri() {
	local s out
	mgr_env cri
	mgr_start containerd
	cri_setup || fail "containerd with its CRI plugin did not start or import: $(tail -5 "$CRI_DIR/containerd.log" | paste -sd ' ')"
	ok "containerd with its CRI plugin up, SystemdCgroup = true, images imported"
	for s in $CRI_SCENARIOS; do
		local extra=""
		[ "$s" = probes ] && extra="--compare runc --probes 10"
		# shellcheck disable=SC2086
		out=$(cri_client $extra "$s" 2>&1)
		echo "$out" | sed "s/^/    [$s] /"
		echo "$out" | grep -q "^PASS $s" || fail "CRI scenario $s: $(echo "$out" | grep '^FAIL' | head -3 | paste -sd ' ')"
		ok "CRI scenario $s"
	done
	wait_for 20 none_matching 'cri-containerd-*.scope' || fail "left behind: $(none_matching 'cri-containerd-*.scope' 2>&1)"
	ok "no cri-containerd scope or cgroup left"
	out=$(ls "$CRI_DIR/husk-root/k8s.io" 2>/dev/null)
	[ -z "$out" ] || fail "state left in the handler's root: $out"
	ok "no state left in the handler's root"
	mgr_argv FLAG_ALL
}
