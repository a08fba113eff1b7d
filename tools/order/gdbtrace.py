# Loaded by gdb (tools/order/trace.py runs it): one temporary breakpoint on
# the entry of every function of the binary; each first hit is written
# ("HIT <address>") and the breakpoint removed, so a function costs one stop
# however often it runs. gdb follows one process: the command itself
# (HUSK_ORDER_FOLLOW=parent) or the first process it forks, the container
# init or exec process, until that executes the container's program
# (HUSK_ORDER_FOLLOW=child). HUSK_ORDER_ADDRS names a file with one
# link-time function address (hex) per line; HUSK_ORDER_HITS the output.
import os

import gdb

for cmd in (
    "set pagination off",
    "set confirm off",
    "set detach-on-fork on",
    f"set follow-fork-mode {os.environ.get('HUSK_ORDER_FOLLOW', 'parent')}",
    "set follow-exec-mode same",
    "set print inferior-events off",
    "set print thread-events off",
    "catch exec",
    "handle SIGCHLD SIGPIPE SIGTERM SIGUSR1 SIGUSR2 SIGWINCH nostop noprint pass",
):
    gdb.execute(cmd)

addrs = [int(line, 16) for line in open(os.environ["HUSK_ORDER_ADDRS"]) if line.strip()]
binary = os.path.realpath(gdb.current_progspace().filename)
gdb.execute("starti", to_string=True)
pid = gdb.selected_inferior().pid
base = None
with open(f"/proc/{pid}/maps") as maps:
    for line in maps:
        f = line.split()
        if len(f) >= 6 and os.path.realpath(f[5]) == binary and int(f[2], 16) == 0:
            base = int(f[0].split("-")[0], 16)
            break
if base is None:
    raise gdb.GdbError("no mapping of the binary at offset 0")

probed = set()
for a in addrs:
    gdb.Breakpoint(f"*{base + a:#x}", temporary=True, internal=True)
    probed.add(base + a)
out = open(os.environ["HUSK_ORDER_HITS"], "w")

while True:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break  # the process exited
    inf = gdb.selected_inferior()
    if not inf.pid:
        break
    if os.path.realpath(inf.progspace.filename or "") != binary:
        # it executed the container's program: not ours to trace
        gdb.execute("detach", to_string=True)
        break
    try:
        pc = int(gdb.parse_and_eval("$pc"))
    except gdb.error:
        continue
    if pc in probed:
        out.write(f"HIT {pc - base:x}\n")
        out.flush()
out.close()
