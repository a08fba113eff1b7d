# containerd's CRI plugin driven the way the kubelet drives it, by
# integration/cri's client (cri-client), with the runtime under test as a
# RuntimeClass handler ("husk": runc v2 shim, BinaryName = the wrapper) and
# runc as a second handler ("runc") the probes are timed against. Pods get a
# network namespace through CNI (a bridge of their own, huskcri0, with no
# gateway, masquerade or iptables rule: eth0 is what containerd asks
# of a pod network), a pause image
# built here (integration/cri/pause.c), cgroupfs parents under /husktest
# (SYSTEMD_CGROUP=true: the kubelet's systemd slices, in the systemd guest).
# Sourced by run.sh (and integration/systemd/managers.sh).
CRI_DIR=$OUT/cri
CRI_SOCK=$CRI_DIR/containerd.sock
CRI_CLIENT=${CRI_CLIENT:-${CARGO_TARGET_DIR:-$REPO/target}/cri/release/cri-client}
PAUSE_IMG=localhost/husk/pause:1
CRI_BRIDGE=huskcri0
SYSTEMD_CGROUP=${SYSTEMD_CGROUP:-false}
cri_ctr() { ctr --address "$CRI_SOCK" -n k8s.io "$@"; }

cri_setup() {
  [ -x "$CRI_CLIENT" ] || { say "no $CRI_CLIENT: make cri-client"; return 1; }
  mkdir -p "$CRI_DIR/cni/net.d" "$CRI_DIR/logs"
  cat >"$CRI_DIR/cni/net.d/10-husk.conflist" <<J
{"cniVersion": "0.4.0", "name": "husk-cri", "plugins": [{"type": "bridge", "bridge": "$CRI_BRIDGE",
  "isGateway": false, "ipMasq": false, "hairpinMode": false,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.233.77.0/24"}]], "dataDir": "$CRI_DIR/cni/ipam"}}]}
J
  local runc_bin; runc_bin=$(command -v runc)
  # the CRI plugin gives sandboxes oomScoreAdj -998: lowering it needs
  # CAP_SYS_RESOURCE, which a host running in a container may lack (runc,
  # crun and husk all refuse then): have containerd cap it at its own
  local restrict=false caps
  caps=$(awk '/^CapEff/ {print $2}' /proc/self/status)
  if (( (16#$caps >> 24 & 1) == 0 )); then
    restrict=true
    not_checked "CRI sandboxes with oomScoreAdj -998" "no CAP_SYS_RESOURCE on this host: restrict_oom_score_adj"
  fi
  cat >"$CRI_DIR/config.toml" <<T
version = 2
root = "$CRI_DIR/root"
state = "$CRI_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CRI_SOCK"
[ttrpc]
  address = "$CRI_SOCK.ttrpc"
[debug]
  address = "$CRI_DIR/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CRI_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  enable_selinux = false
  restrict_oom_score_adj = $restrict
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CRI_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "husk"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.husk.options]
        BinaryName = "$WRAP"
        Root = "$CRI_DIR/husk-root"
        SystemdCgroup = $SYSTEMD_CGROUP
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc_bin"
        Root = "$CRI_DIR/runc-root"
        SystemdCgroup = $SYSTEMD_CGROUP
T
  containerd --config "$CRI_DIR/config.toml" >"$CRI_DIR/containerd.log" 2>&1 &
  register_pid $! containerd-cri
  wait_for "${START_WAIT:-20}" cri_ctr version || { tail -20 "$CRI_DIR/containerd.log" >&2; return 1; }
  local img
  for img in oci-image.tar pause-image.tar; do
    cri_ctr image import "$IMAGE_DIR/$img" >"$CRI_DIR/import.log" 2>&1 || { cat "$CRI_DIR/import.log" >&2; return 1; }
  done
}

cri_teardown() {
  [ -S "$CRI_SOCK" ] || return 0
  kill_registered
  kill_mentioning "$CRI_DIR/"
  umount_under "$CRI_DIR/"
  ip link del "$CRI_BRIDGE" 2>/dev/null
  rm_cgroups husktest
}

# cri_client SCENARIO [ARGS]: the client against the husk handler
cri_client() {
  local sd="" hn=""; [ "$SYSTEMD_CGROUP" = true ] && sd=--systemd
  [ "${CRI_HOST_NETWORK:-0}" = 1 ] && hn=--host-network
  "$CRI_CLIENT" --socket "$CRI_SOCK" --handler husk $sd $hn --cgroup-root "${CRI_CGROUP_ROOT:-husktest}" \
    --log-dir "$CRI_DIR/logs" "$@"
}
# nothing of the pods left: no state in the handler's root, no shim, no mount
cri_nothing_left() {
  local left; left=$(ls "$CRI_DIR/husk-root/k8s.io" 2>/dev/null)
  expect_eq "state dirs left in the handler's root" "" "$left"
  expect_eq "sandboxes left" "" "$(cri_ctr c ls -q 2>/dev/null)"
  expect_eq "mounts left under the CRI state" "" "$(awk -v d="$CRI_DIR/state/" 'index($5,d)==1' /proc/self/mountinfo)"
}
cri_scenario() { cri_client "$@"; cri_nothing_left; }
CRI_SCENARIOS="pod hardened probes resources stop"

cri_scenarios() {
  local s
  for s in $CRI_SCENARIOS; do
    case $s in
      probes) scenario cri-probes cri_scenario probes --compare runc --probes 20;;
      *) scenario "cri-$s" cri_scenario "$s";;
    esac
  done
  # which runtime ran the pods: the wrapper saw the sandboxes' creates
  scenario cri-handler grep -q -- "--root $CRI_DIR/husk-root/k8s.io .*create" "$ARGV_LOG"
}
