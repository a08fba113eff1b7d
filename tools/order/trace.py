#!/usr/bin/env python3
"""Record which functions of husk run on the container lifecycle path, in
the order they first run, and write them as a linker symbol ordering file.

    tools/order/trace.py --binary UNSTRIPPED_HUSK --bundles DIR --out FILE

Why: the kernel maps a binary's text in 64 KiB windows around each page
fault ("fault-around"), so peak RSS counts the windows a run touches, not
the bytes it executes. In link order husk's hot code is spread over most
of its 3.5 MB of text; with the functions a lifecycle runs placed first
(lld --symbol-ordering-file) they share a few windows.

Method: gdb with one temporary breakpoint per function of the unstripped
binary (tools/order/gdbtrace.py), once following each command and once
following the process it forks (the container init, the exec process),
for run/create/state/list/start/delete/exec/kill on the benchmark bundles.
Needs root and gdb. (Kernel uprobes were tried first: on this 6.18 kernel
thousands of them corrupt the traced process and take minutes to remove.)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def functions(binary):
    """{address: [symbol names]} and {address: size} of the defined functions."""
    out = subprocess.run(["nm", "--defined-only", "-S", binary], check=True, capture_output=True, text=True).stdout
    by_addr, sizes = {}, {}
    for line in out.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW":
            continue
        addr, size = int(f[0], 16), int(f[1], 16)
        if size:
            by_addr.setdefault(addr, []).append(f[3])
            sizes[addr] = size
    if not by_addr:
        sys.exit(f"trace: {binary} has no function symbols (build it unstripped)")
    return by_addr, sizes


class Tracer:
    def __init__(self, binary, addrs_file, work):
        self.binary, self.addrs_file, self.work = binary, addrs_file, work
        self.order, self.seen, self.runs = [], set(), 0

    def run(self, root, *args, follow="parent", meanwhile=None):
        """Run one husk command under gdb, following the command or (follow
        "child") the process it forks. Output goes to a file: a created
        container's init keeps husk's stdio open. meanwhile() runs while gdb
        does (to start a traced init)."""
        hits = Path(self.work) / f"hits-{self.runs}"
        log = Path(self.work) / f"gdb-{self.runs}.log"
        self.runs += 1
        env = dict(os.environ, HUSK_ORDER_FOLLOW=follow, HUSK_ORDER_ADDRS=self.addrs_file, HUSK_ORDER_HITS=str(hits))
        env.pop("RUST_BACKTRACE", None)
        with open(log, "w") as out:
            r = subprocess.Popen(
                ["gdb", "-q", "-batch", "-x", str(HERE / "gdbtrace.py"), "--args", self.binary, "--root", root, *args],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )
            try:
                if meanwhile:
                    meanwhile()
                r.wait(timeout=180)
            finally:
                if r.poll() is None:
                    r.kill()
                    r.wait()
        if not hits.exists():
            raise RuntimeError(f"gdb traced nothing for husk {' '.join(args)}: {log.read_text()[-2000:]}")
        for line in hits.read_text().splitlines():
            addr = int(line.split()[1], 16)
            if addr not in self.seen:
                self.seen.add(addr)
                self.order.append(addr)
        if r.returncode != 0:
            raise RuntimeError(f"gdb on husk {' '.join(args)}: exit {r.returncode}: {log.read_text()[-2000:]}")


def husk(binary, root, *args):
    """Run husk untraced; its output through files, not pipes, which a
    created container's init would keep open."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run([binary, "--root", root, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        if r.returncode != 0:
            raise RuntimeError(f"husk {' '.join(args)}: exit {r.returncode}: {err.read().strip()}")
        return out.read()


def wait_status(binary, root, cid, want, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run([binary, "--root", root, "state", cid], stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode == 0 and json.loads(r.stdout).get("status") == want:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cid} did not become {want}")
        time.sleep(0.05)


def workload(t, binary, bundles, root):
    """The commands a manager runs, on both benchmark bundles. A command
    that forks runs twice, following the command, then its child."""
    for b in ("default", "userns"):
        bundle = str(Path(bundles) / b)
        for mode in ("parent", "child"):
            t.run(root, "run", "-b", bundle, f"{b}-run-{mode}", follow=mode)
        cid = f"{b}-a"
        t.run(root, "create", "-b", bundle, cid)
        t.run(root, "state", cid)
        t.run(root, "list")
        t.run(root, "start", cid)
        t.run(root, "state", cid)
        wait_status(binary, root, cid, "stopped")
        t.run(root, "delete", cid)
        # the init side of create: it waits for start, so start it meanwhile
        cid = f"{b}-b"

        def start_when_created(cid=cid):
            wait_status(binary, root, cid, "created")
            husk(binary, root, "start", cid)

        t.run(root, "create", "-b", bundle, cid, follow="child", meanwhile=start_when_created)
        wait_status(binary, root, cid, "stopped")
        husk(binary, root, "delete", cid)
        # exec into a created container (its init waits for start), then kill it
        cid = f"{b}-c"
        husk(binary, root, "create", "-b", bundle, cid)
        for mode in ("parent", "child"):
            t.run(root, "exec", cid, "/bin/true", follow=mode)
        t.run(root, "kill", cid, "KILL")
        t.run(root, "delete", "--force", cid)
    left = husk(binary, root, "list", "-q").split()
    if left:
        raise RuntimeError(f"containers left behind: {left}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True, help="unstripped husk built exactly like the release")
    p.add_argument("--bundles", required=True, help="dir with the benchmark bundles default/ and userns/")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    binary = os.path.realpath(a.binary)
    by_addr, sizes = functions(binary)
    root = tempfile.mkdtemp(prefix="husk-order-root-", dir="/run")
    work = tempfile.mkdtemp(prefix="husk-order-")
    try:
        addrs_file = os.path.join(work, "addrs")
        with open(addrs_file, "w") as f:
            f.writelines(f"{x:x}\n" for x in sorted(by_addr))
        t = Tracer(binary, addrs_file, work)
        try:
            workload(t, binary, a.bundles, root)
        finally:
            for cid in subprocess.run([binary, "--root", root, "list", "-q"], capture_output=True, text=True).stdout.split():
                subprocess.run([binary, "--root", root, "delete", "--force", cid], capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    if len(t.order) < 100:
        sys.exit(f"trace: only {len(t.order)} functions seen; not writing {a.out}")
    with open(a.out + ".new", "w") as f:
        for addr in t.order:
            for name in by_addr[addr]:
                f.write(name + "\n")
    os.replace(a.out + ".new", a.out)
    hot, total = sum(sizes[x] for x in t.order), sum(sizes.values())
    print(
        f"trace: {len(t.order)} of {len(by_addr)} functions ran ({hot // 1024} of {total // 1024} KiB) in {t.runs} traced commands; wrote {a.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
