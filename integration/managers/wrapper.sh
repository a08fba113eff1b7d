# The argv-logging wrapper the managers are pointed at instead of the
# runtime: sourced by run.sh (this host) and by integration/systemd's
# manager scenarios (the systemd guest).
#   write_argv_wrapper WRAP RT_BIN ARGV_LOG
# writes WRAP, a bash script that appends its command line (time, pid, cwd,
# argv) to ARGV_LOG, runs RT_BIN with the manager's stdio, fds and
# environment untouched, and on failure also logs the exit status and the
# last lines of the runtime's --log file.
write_argv_wrapper() {
  local wrap=$1 rt=$2 log=$3
  mkdir -p "$(dirname "$wrap")"
  cat >"$wrap" <<W
#!/bin/bash
{ printf '%s [%s] cwd=%s:' "\$(date +%T.%3N)" "\$\$" "\$PWD"; printf ' %q' "\$0" "\$@"; echo; } >>'$log'
'$rt' "\$@"; rc=\$?
if [ \$rc != 0 ]; then
  log=""; prev=""
  for a in "\$@"; do case \$a in --log=*) log=\${a#--log=};; esac; [ "\$prev" = --log ] && log=\$a; prev=\$a; done
  { echo "  [\$\$] -> exit \$rc"; [ -n "\$log" ] && [ -f "\$log" ] && tail -n 3 "\$log" | sed 's/^/  [log] /'; } >>'$log'
fi
exit \$rc
W
  chmod +x "$wrap"
}
