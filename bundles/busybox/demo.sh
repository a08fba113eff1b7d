#!/bin/sh
# Runs inside the demo container: print what isolation looks like from here.
echo "== inside the container"
echo "hostname:      $(hostname)"
echo "my pid:        $$ (PID 1 means a private pid namespace)"
echo "processes:     $(ls -d /proc/[0-9]* | wc -l) visible"
echo "user:          $(id)"
echo "capabilities:  $(grep CapEff /proc/self/status | cut -f2) (effective)"
echo "network:       $(ls /sys/class/net | tr '\n' ' ')"
echo "root fs:       $(touch /x 2>&1 || true)"
echo "mounts:"
mount | sed 's/^/  /'
