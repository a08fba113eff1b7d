# podman 4.3 + conmon, isolated by its own containers.conf / storage.conf
# (root, runroot, tmpdir, events file under build/).  The runtime is chosen
# the way a user would: a [engine.runtimes] entry and engine.runtime.
source "$HERE/cli.sh"
MDIR=$OUT/podman
podman_env() { echo "CONTAINERS_CONF=$MDIR/containers.conf CONTAINERS_STORAGE_CONF=$MDIR/storage.conf CONTAINERS_REGISTRIES_CONF=$MDIR/registries.conf"; }
# From $MDIR: conmon, started by podman in podman's working directory,
# creates a file "oom" there when the container is OOM-killed.
cli() { (cd "$MDIR" && env $(podman_env) podman "$@"); }
cli_line() { echo "cd $MDIR && env $(podman_env) podman"; }
RUN_FLAGS="--network none"
# podman 4.3's update has no --pids-limit (later ones have)
UPDATE_PIDS=$(podman update --help 2>/dev/null | grep -q -- '--pids-limit' && echo 1 || echo 0)
OOM_REPORTED=0    # conmon on this cgroup v1 host reports OOMKilled=false even with runc
# cgroupfs on this host (no systemd); the systemd guest sets podman's
# default, systemd (PODMAN_ENGINE_EXTRA: more [engine] lines, none today)
PODMAN_CGROUP_MANAGER=${PODMAN_CGROUP_MANAGER:-cgroupfs}
PODMAN_ENGINE_EXTRA=${PODMAN_ENGINE_EXTRA:-}

podman_setup() {
  mkdir -p "$MDIR/tmp"
  cat >"$MDIR/containers.conf" <<T
[containers]
log_driver = "k8s-file"
netns = "none"
# podman writes RLIMIT_NOFILE 1048576 and its own RLIMIT_NPROC into every
# config.json, but this sandbox's hard limits are lower (nofile 20000) and
# conmon runs the runtime with nproc 32768: no runtime may raise a hard
# limit, runc fails "error setting rlimit type 7/6" the same way
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]

[engine]
runtime = "$RUNTIME"
cgroup_manager = "$PODMAN_CGROUP_MANAGER"
# podman 4.3's list plus husk (setting it replaces the list): for these
# runtimes conmon adds --log-format=json --log <rundir>/oci-log and podman
# reports a failed create from that file (as the README tells users to)
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "husk"]
$PODMAN_ENGINE_EXTRA
events_logger = "file"
events_logfile_path = "$MDIR/events.log"
tmp_dir = "$MDIR/tmp"
volume_path = "$MDIR/volumes"

[engine.runtimes]
$RUNTIME = ["$WRAP"]
T
  cat >"$MDIR/storage.conf" <<T
[storage]
driver = "vfs"
runroot = "$MDIR/runroot"
graphroot = "$MDIR/root"
T
  echo 'unqualified-search-registries = []' >"$MDIR/registries.conf"
  cli import "$IMAGE_DIR/rootfs.tar" "$IMG" >"$MDIR/import.log" 2>&1 || { cat "$MDIR/import.log" >&2; return 1; }
  # all of it (info.json: the systemd guest reads the cgroup manager there;
  # one podman info costs 15-25 s under TCG), and the runtime's path in it
  cli info --format json >"$MDIR/info.json" 2>"$MDIR/info.err"
  grep -qF "\"$WRAP\"" "$MDIR/info.json" || { say "podman does not use $WRAP:"; cat "$MDIR/info.err" "$MDIR/info.json" >&2; return 1; }
}
podman_teardown() {
  [ -f "$MDIR/containers.conf" ] || return 0
  cli rm -af -t 0 >/dev/null 2>&1
  cli rmi -af >/dev/null 2>&1
  kill_mentioning "$MDIR/"
  umount_under "$MDIR/"
  rm_cgroups libpod_parent   # only empty dirs go: another podman's stay
  rm -rf "$MDIR"
}
podman_scenarios() { cli_scenarios; }
