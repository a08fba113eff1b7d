#!/bin/bash
# ExecStart of rtest.service in the systemd guest: waits until systemd has
# finished booting, runs scenarios.sh, and writes everything to the console
# and to /mnt/rtest (the host's run directory): guest.log (the scenarios'
# output, what run.sh reads), journal.log (the guest's journal). Ends with
# "SYSTEMD-GUEST-EXIT rc=N"; the unit's SuccessAction/FailureAction then
# power the guest off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
out=/mnt/rtest
up() { cut -d' ' -f1 /proc/uptime; }

main() {
	echo "SYSTEMD-GUEST: rtest.service started at $(up)s of uptime"
	local state
	state=$(timeout 120 systemctl is-system-running --wait 2>&1)
	echo "SYSTEMD-GUEST: system $state at $(up)s of uptime (systemd $(systemctl --version | awk 'NR == 1 {print $2}'), PID 1 $(cat /proc/1/comm))"
	if [ "$state" != running ]; then
		systemctl --failed --no-legend --plain 2>&1 | sed 's/^/SYSTEMD-GUEST: failed unit: /'
	fi
	timeout -k 5 "${RTEST_TIMEOUT:-300}" bash "$RTEST_DIR/scenarios.sh"
	local rc=$?
	[ $rc = 124 ] && echo "SYSTEMD-GUEST: scenarios.sh timed out after ${RTEST_TIMEOUT:-300}s"
	echo "SYSTEMD-GUEST: scenarios done at $(up)s of uptime"
	echo "SYSTEMD-GUEST-EXIT rc=$rc"
	return $rc
}

main 2>&1 | tee "$out/guest.log" >/dev/console
rc=${PIPESTATUS[0]}
journalctl -b --no-pager -o short-monotonic > "$out/journal.log" 2>&1
sync
exit "$rc"
