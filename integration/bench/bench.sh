#!/usr/bin/env bash
# Benchmark husk against runc and crun, side by side (`make bench` runs this):
#   integration/bench/bench.sh [--husk PATH] [bench.py options...]
# Environment: BENCH_RUNTIMES (default "husk runc crun"; a word may be
# name=path), BENCH_ROUNDS (100), BENCH_WARMUP (5), BENCH_BATCH_REPEATS (3),
# BENCH_SUBJECT (husk).  Results go to results/bench/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundles=$repo/build/bench/bundles
results=$repo/results/bench
pkgs="runc crun busybox-static python3 python3-matplotlib util-linux gcc libc6-dev"

[ "$(id -u)" = 0 ] || { echo "bench: run as root (real containers)" >&2; exit 1; }

missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "bench: installing:$missing" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; }
fi

"$here/mkbundle.sh" "$bundles" >&2
spawn=$repo/build/bench/spawn
if [ ! -x "$spawn" ] || [ "$here/spawn.c" -nt "$spawn" ]; then
  gcc -O2 -static -Wall -Wextra -o "$spawn" "$here/spawn.c"
fi

# How to get the same run again: `make bench` sets BENCH_VIA to say so.
reproduce=${BENCH_VIA:-"integration/bench/bench.sh${*:+ $*}"}
for v in BENCH_RUNTIMES BENCH_ROUNDS BENCH_WARMUP BENCH_BATCH_REPEATS BENCH_SUBJECT; do
  [ -n "${!v:-}" ] && reproduce="$v='${!v}' $reproduce"
done

# crun 1.8.1 refuses a hybrid cgroup layout (v1 controllers plus a cgroup2 at
# /sys/fs/cgroup/unified): "cgroups in hybrid mode not supported".  So every
# runtime runs in a private mount namespace where that cgroup2 mount is gone,
# i.e. plain cgroup v1 for all.  The host's mounts stay as they are, and the
# namespace and all its mounts vanish when bench.py exits.  An empty tmpfs
# goes over the bare directory: runtimes still write into it (crun makes a
# directory per container for the v2 line of /proc/self/cgroup), and that
# must not land on the host's /sys/fs/cgroup tmpfs.
unified=/sys/fs/cgroup/unified
if mountpoint -q "$unified"; then
  note="ran in a private mount namespace (unshare -m --propagation private)"
  note+=" with the cgroup2 at $unified unmounted there (an empty private tmpfs"
  note+=" over the directory), so all runtimes see cgroup v1 only: crun 1.8.1"
  note+=" refuses this host's hybrid layout; host mounts untouched"
  prepare="umount $unified && mount -t tmpfs -o size=16m,mode=755 bench-unified $unified"
else
  note="cgroup layout left as on the host (no $unified mount); private mount namespace all the same"
  prepare=true
fi

exec unshare --mount --propagation private -- /bin/bash -c '
  set -e
  '"$prepare"'
  exec /usr/bin/python3 "$@"' bench \
  "$here/bench.py" --spawn "$spawn" --bundles "$bundles" --results "$results" \
  --note "$note" \
  --note "each runtime binary's page cache is dropped (fsync + POSIX_FADV_DONTNEED) before the first round, so all start from the same cache state" \
  --reproduce "$reproduce" "$@"
