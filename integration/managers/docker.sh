# Docker 20.10 (docker.io): dockerd started by hand with its own data-root,
# exec-root, pidfile, socket and daemon.json (which names the runtime, the
# way a user would); it runs its own containerd under exec-root.
source "$HERE/cli.sh"
MDIR=$OUT/docker
DOCKER=/usr/bin/docker     # the Debian client (another docker may be first in PATH)
cli() { DOCKER_CONFIG=$MDIR/client "$DOCKER" -H "unix://$MDIR/docker.sock" "$@"; }
cli_line() { echo "env DOCKER_CONFIG=$MDIR/client $DOCKER -H unix://$MDIR/docker.sock"; }
DRT=$RUNTIME; [ "$DRT" = runc ] && DRT=runc-logged   # "runc" is reserved
RUN_FLAGS="--runtime $DRT --network none"
# the cgroup settings of daemon.json: cgroupfs under /husktest on this host;
# the systemd guest sets Docker's default there, the systemd driver
DOCKER_CGROUP_JSON=${DOCKER_CGROUP_JSON:-'  "cgroup-parent": "husktest",
  "exec-opts": ["native.cgroupdriver=cgroupfs"]'}

docker_setup() {
  mkdir -p "$MDIR/client"
  cat >"$MDIR/daemon.json" <<J
{
  "runtimes": { "$DRT": { "path": "$WRAP" } },
  "data-root": "$MDIR/data",
  "exec-root": "$MDIR/exec",
  "pidfile": "$MDIR/docker.pid",
  "hosts": ["unix://$MDIR/docker.sock"],
  "iptables": false,
  "ip6tables": false,
  "bridge": "none",
$DOCKER_CGROUP_JSON
}
J
  dockerd --config-file "$MDIR/daemon.json" >"$MDIR/dockerd.log" 2>&1 &
  register_pid $! dockerd
  wait_for "${START_WAIT:-30}" cli version || { tail -20 "$MDIR/dockerd.log" >&2; return 1; }
  cli info --format '{{json .Runtimes}}' | grep -qF "$WRAP" || { say "dockerd does not know $WRAP"; return 1; }
  cli import "$IMAGE_DIR/rootfs.tar" "$IMG" >"$MDIR/import.log" 2>&1 || { cat "$MDIR/import.log" >&2; return 1; }
}
docker_teardown() {
  [ -S "$MDIR/docker.sock" ] || return 0
  local ids; ids=$(cli ps -aq 2>/dev/null); [ -n "$ids" ] && cli rm -f $ids >/dev/null 2>&1
  kill_registered
  kill_mentioning "$MDIR/"
  umount_under "$MDIR/"
}
docker_scenarios() { cli_scenarios; }
