#!/bin/bash
echo "hello from chroot: $(uname -r)"; cat /proc/self/mountinfo; ls /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers
$HUSK --version
echo "PASS boot"
