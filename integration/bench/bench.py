#!/usr/bin/env python3
"""Side-by-side benchmark of OCI runtimes (husk, runc, crun, ...).

Run through integration/bench/bench.sh (or `make bench`), which installs what is
needed, makes the bundles and enters a private mount namespace first.  This
file only measures and reports:

    bench.py --bundles DIR --results DIR [--runtimes "husk=PATH runc crun"]
             [--rounds N] [--warmup N] [--batch-repeats N] [--subject husk]

Every figure comes from one runtime command, run by the small static helper
built from spawn.c: wall time from CLOCK_MONOTONIC around posix_spawn + wait4,
CPU time (user + sys) and peak RSS from the rusage wait4 returns for that
direct child, which covers the child and every descendant it waited for.

Rounds are interleaved: round i runs every runtime once, the order rotated by
i, so machine noise falls on all runtimes alike.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import datetime
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
BATCH_SIZE = 100
BATCH_PARALLEL = 4
TARGET_PEER = "crun"


# ---------------------------------------------------------------- measuring


@dataclass
class Sample:
    """One runtime command: wall and CPU time in ns, peak RSS in KiB."""

    wall_ns: int
    cpu_ns: int
    maxrss_kib: int
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Spawner:
    """Runs commands through the small `spawn` helper (spawn.c), which times
    them and reads their rusage with wait4; see spawn.c for why a helper."""

    def __init__(self, helper: str, timeout_s: float):
        self.helper = helper
        self.timeout_s = timeout_s

    def timed(self, argv: list[str], log_fd: int, result_fd: int) -> Sample:
        """Run argv, stdin /dev/null, stdout and stderr to log_fd.

        The command gets its own process group, so a Ctrl-C at the terminal
        reaches only us, and we stop between commands, never in the middle
        of one.  A command still running after the timeout is killed (exit
        code -2): a hung runtime must not hang the benchmark."""
        for fd in (log_fd, result_fd):
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, result_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ]
        pid = os.posix_spawn(self.helper, [self.helper, *argv], os.environ,
                             file_actions=actions, setpgroup=0)
        timed_out = not wait_exit(pid, self.timeout_s)
        if timed_out:
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if timed_out:
            return Sample(0, 0, 0, -2)
        os.lseek(result_fd, 0, os.SEEK_SET)
        fields = os.read(result_fd, 200).split()
        if os.waitstatus_to_exitcode(status) != 0 or len(fields) != 5:
            return Sample(0, 0, 0, -1)
        code, wall_ns, user_us, sys_us, maxrss_kib = map(int, fields)
        return Sample(wall_ns, (user_us + sys_us) * 1000, maxrss_kib, code)


def scratch_fd() -> int:
    """An anonymous file for a command's output."""
    return os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o600)


def read_log(log_fd: int) -> str:
    os.lseek(log_fd, 0, os.SEEK_SET)
    return os.read(log_fd, 4096).decode(errors="replace").strip()


def reap_orphans() -> None:
    """Reap zombies reparented to us (we are a child subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until process pid (not necessarily our child) has exited, at most
    timeout_s; True if it has.  No polling loop: a pidfd becomes readable
    when the process exits.  Does not reap it."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout_s)
        return bool(readable)
    finally:
        os.close(pidfd)


def kill_orphans() -> list[int]:
    """SIGKILL and reap every child we still have.  As child subreaper we
    inherit whatever a runtime left behind (say, a container init of a
    `create` that was interrupted), so this is the last-resort cleanup."""
    me = str(os.getpid())
    killed = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = stat[stat.rindex(")") + 2:].split()[1]
        if ppid == me:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    for pid in killed:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return killed


class Stop(Exception):
    """A SIGINT or SIGTERM arrived: stop after the command under way."""


STOP_SIGNAL: list[int] = []  # the signal that asked us to stop, if any


def on_stop_signal(signum: int, _frame) -> None:
    if not STOP_SIGNAL:
        print(f"bench: {signal.Signals(signum).name}: stopping after the command "
              "under way, then cleaning up", file=sys.stderr)
    STOP_SIGNAL.append(signum)


def check_stop() -> None:
    if STOP_SIGNAL:
        raise Stop()


# ---------------------------------------------------------------- runtimes


@dataclass
class Runtime:
    name: str
    path: str
    root: str  # this runtime's own --root state directory
    failures: list[str] = field(default_factory=list)

    def cmd(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    def version(self) -> str:
        try:
            out = subprocess.run([self.path, "--version"], capture_output=True,
                                 text=True, timeout=10, process_group=0)
            lines = (out.stdout or out.stderr).strip().splitlines()
            return lines[0] if lines else "unknown"
        except OSError as err:
            return f"unknown ({err.strerror})"
        except subprocess.TimeoutExpired:
            return "unknown (--version hung)"

    def binary_size(self) -> int:
        return os.stat(self.path).st_size

    def force_delete(self, cid: str) -> None:
        subprocess.run(self.cmd("delete", "--force", cid), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       process_group=0, timeout=60)

    def remaining(self) -> list[str]:
        out = subprocess.run(self.cmd("list", "-q"), capture_output=True, text=True,
                             process_group=0, timeout=60)
        return out.stdout.split() if out.returncode == 0 else []


def parse_runtimes(spec: str, husk: str, state_dir: Path) -> list[Runtime]:
    """'husk=/path runc crun' -> Runtimes; a bare name is looked up on PATH,
    except husk, whose default path is --husk."""
    runtimes = []
    for word in spec.split():
        name, _, path = word.partition("=")
        if not path:
            path = husk if name == "husk" else (shutil.which(name) or "")
        if not path or not os.access(path, os.X_OK):
            sys.exit(f"bench: runtime {name}: no executable at {path or '(not on PATH)'}")
        root = state_dir / name
        root.mkdir(parents=True)
        runtimes.append(Runtime(name, os.path.realpath(path), str(root)))
    if len({r.name for r in runtimes}) != len(runtimes):
        sys.exit("bench: a runtime is named twice")
    return runtimes


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, spawner: Spawner, runtimes: list[Runtime], bundles: Path,
                 state_dir: Path, prefix: str):
        self.spawner = spawner
        self.runtimes = runtimes
        self.pid_file = str(state_dir / "pid")
        self.default_bundle = str(bundles / "default")
        self.userns_bundle = str(bundles / "userns")
        self.prefix = prefix  # every container id starts with it
        self.seq = 0
        self.log_fd = scratch_fd()
        self.result_fd = scratch_fd()
        # samples[runtime][measure] -> list of Sample
        self.samples: dict[str, dict[str, list[Sample]]] = {
            r.name: {m: [] for m in ("run", "run_userns", "create", "start", "delete")}
            for r in runtimes
        }
        # batches[runtime][kind] -> list of (wall_ns, failures)
        self.batches: dict[str, dict[str, list[tuple[int, int]]]] = {
            r.name: {"sequential": [], "parallel": []} for r in runtimes
        }

    def timed(self, argv: list[str], log_fd: int, result_fd: int | None = None) -> Sample:
        result_fd = self.result_fd if result_fd is None else result_fd
        return self.spawner.timed(argv, log_fd, result_fd)

    def new_id(self, rt: Runtime) -> str:
        self.seq += 1
        return f"{self.prefix}-{rt.name}-{self.seq}"

    def note_failure(self, rt: Runtime, what: str, cid: str,
                     sample: Sample | None = None, log_fd: int | None = None) -> None:
        """Remember what failed (exit code and the runtime's output), and make
        sure the container is gone."""
        status = f"exit code {sample.exit_code}" if sample else "failed"
        log = read_log(self.log_fd if log_fd is None else log_fd) if sample else ""
        rt.failures.append(f"{what} {cid}: {status}" + (f": {log}" if log else ""))
        rt.force_delete(cid)

    # One container with `run`; the runtime deletes it when it exits.
    def measure_run(self, rt: Runtime, bundle: str, record: str | None) -> None:
        cid = self.new_id(rt)
        sample = self.timed(rt.cmd("run", "--bundle", bundle, cid), self.log_fd)
        reap_orphans()
        if not sample.ok:
            self.note_failure(rt, "run", cid, sample)
        elif record:
            self.samples[rt.name][record].append(sample)

    # One container through create, start (wait for /bin/true to exit), delete.
    def measure_lifecycle(self, rt: Runtime, record: bool) -> None:
        cid = self.new_id(rt)
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)
        create = self.timed(
            rt.cmd("create", "--bundle", self.default_bundle, "--pid-file", self.pid_file, cid),
            self.log_fd)
        if not create.ok:
            return self.note_failure(rt, "create", cid, create)
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return self.note_failure(rt, "create (no pid file)", cid)
        start = self.timed(rt.cmd("start", cid), self.log_fd)
        if not start.ok:
            return self.note_failure(rt, "start", cid, start)
        if not wait_exit(pid, self.spawner.timeout_s):
            return self.note_failure(rt, "start (container did not exit)", cid)
        reap_orphans()
        delete = self.timed(rt.cmd("delete", cid), self.log_fd)
        reap_orphans()
        if not delete.ok:
            return self.note_failure(rt, "delete", cid, delete)
        if record:
            for name, sample in (("create", create), ("start", start), ("delete", delete)):
                self.samples[rt.name][name].append(sample)

    def round(self, index: int, record: bool) -> None:
        shift = index % len(self.runtimes)
        for rt in self.runtimes[shift:] + self.runtimes[:shift]:
            check_stop()
            self.measure_run(rt, self.default_bundle, "run" if record else None)
            self.measure_lifecycle(rt, record)
            self.measure_run(rt, self.userns_bundle, "run_userns" if record else None)

    # BATCH_SIZE containers with `run`, `workers` at a time; (wall ns, failures).
    def batch(self, rt: Runtime, workers: int) -> tuple[int, int]:
        ids = [self.new_id(rt) for _ in range(BATCH_SIZE)]

        def one(cid: str) -> bool | None:
            if STOP_SIGNAL:
                return None
            log_fd, result_fd = scratch_fd(), scratch_fd()
            try:
                argv = rt.cmd("run", "--bundle", self.default_bundle, cid)
                sample = self.timed(argv, log_fd, result_fd)
                if not sample.ok:
                    self.note_failure(rt, "batch run", cid, sample, log_fd)
                return sample.ok
            finally:
                os.close(log_fd)
                os.close(result_fd)

        start = time.perf_counter_ns()
        if workers == 1:
            results = [one(cid) for cid in ids]
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(one, ids))
        wall = time.perf_counter_ns() - start
        reap_orphans()  # only now: a waitpid(-1) could steal a worker's child
        check_stop()
        return wall, results.count(False)

    def batches_round(self, index: int) -> None:
        shift = index % len(self.runtimes)
        for rt in self.runtimes[shift:] + self.runtimes[:shift]:
            check_stop()
            self.batches[rt.name]["sequential"].append(self.batch(rt, 1))
            self.batches[rt.name]["parallel"].append(self.batch(rt, BATCH_PARALLEL))

    def cleanup(self) -> list[str]:
        """Delete every container we left, reap, remove stray cgroups."""
        notes = []
        for rt in self.runtimes:
            for cid in rt.remaining():
                if cid.startswith(self.prefix):
                    rt.force_delete(cid)
                    notes.append(f"{rt.name}: deleted leftover container {cid}")
        for pid in kill_orphans():
            notes.append(f"killed leftover process {pid}")
        for cgroup in stray_cgroups(self.prefix):
            try:
                os.rmdir(cgroup)
                notes.append(f"removed leftover cgroup {cgroup}")
            except OSError as err:
                notes.append(f"could not remove leftover cgroup {cgroup}: {err.strerror}")
        os.close(self.log_fd)
        os.close(self.result_fd)
        return notes


def stray_cgroups(prefix: str) -> list[str]:
    """Cgroup directories (two levels deep) named after our containers."""
    found = []
    for hierarchy in cgroup_mounts():
        for top in scandirs(hierarchy):
            if top.name.startswith(prefix):
                found.append(top.path)
            else:
                found += [d.path for d in scandirs(top.path) if d.name.startswith(prefix)]
    return sorted(found, key=len, reverse=True)  # children before parents


def cgroup_mounts() -> list[str]:
    """Mount points of cgroup (v1 or v2) file systems in our mount namespace."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                mounts.append(fields[4])
    return mounts


def scandirs(path) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


# ---------------------------------------------------------------- reporting


def ms(ns: float) -> float:
    return ns / 1e6


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summarise(bench: Bench, rt: Runtime) -> dict:
    s = bench.samples[rt.name]
    run_ms = [ms(x.wall_ns) for x in s["run"]]
    b = bench.batches[rt.name]
    return {
        "run_median": median(run_ms),
        "run_min": min(run_ms) if run_ms else None,
        "run_max": max(run_ms) if run_ms else None,
        "run_userns": median([ms(x.wall_ns) for x in s["run_userns"]]),
        "create": median([ms(x.wall_ns) for x in s["create"]]),
        "start": median([ms(x.wall_ns) for x in s["start"]]),
        "delete": median([ms(x.wall_ns) for x in s["delete"]]),
        "cpu": median([ms(x.cpu_ns) for x in s["run"]]),
        "rss_mb": median([x.maxrss_kib * 1024 / 1e6 for x in s["run"]]),
        "binary_mb": rt.binary_size() / 1e6,
        "seq_s": median([w / 1e9 for w, _ in b["sequential"]]),
        "seq_fail": sum(f for _, f in b["sequential"]),
        "par_s": median([w / 1e9 for w, _ in b["parallel"]]),
        "par_fail": sum(f for _, f in b["parallel"]),
        "failures": len(rt.failures),
        "samples": len(run_ms),
    }


COLUMNS = [  # key, heading, digits
    ("run_median", "run ms median", 1),
    ("run_min", "min", 1),
    ("run_max", "max", 1),
    ("run_userns", "run userns ms", 1),
    ("create", "create ms", 1),
    ("start", "start ms", 1),
    ("delete", "delete ms", 1),
    ("cpu", "CPU ms / run", 1),
    ("rss_mb", "peak RSS MB", 1),
    ("binary_mb", "binary MB", 2),
    ("seq_s", f"{BATCH_SIZE} seq s", 2),
    ("par_s", f"{BATCH_SIZE} ×{BATCH_PARALLEL} s", 2),
]


def table(summaries: dict[str, dict]) -> list[str]:
    head = ["runtime"] + [h for _, h, _ in COLUMNS] + ["failures"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summaries.items():
        cells = [name]
        cells += [fmt(s[key], digits) for key, _, digits in COLUMNS]
        cells.append(f"{s['failures']} (batch {s['seq_fail']}+{s['par_fail']})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratios(summaries: dict[str, dict], subject: str) -> list[str]:
    if subject not in summaries or len(summaries) < 2:
        return [f"(no ratios: subject {subject} is not among the runtimes benched)"]
    keys = [k for k, _, _ in COLUMNS]
    heads = [h for _, h, _ in COLUMNS]
    lines = ["| " + " | ".join([f"{subject} ÷ peer"] + heads) + " |",
             "|" + "---|" * (len(keys) + 1)]
    mine = summaries[subject]
    for peer, theirs in summaries.items():
        if peer == subject:
            continue
        cells = [peer] + [
            fmt(mine[k] / theirs[k], 2) if mine[k] is not None and theirs[k] else "—"
            for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(summaries: dict[str, dict], subject: str) -> list[str]:
    if subject not in summaries or TARGET_PEER not in summaries or subject == TARGET_PEER:
        return [f"(no targets: they compare {subject} with {TARGET_PEER}, "
                "and both must be benched)"]
    me, peer = summaries[subject], summaries[TARGET_PEER]

    def check(label: str, mine, limit, extra_ok: bool = True) -> str:
        if mine is None or limit is None:
            return f"- **missed** {label}: no measurement"
        met = mine <= limit and extra_ok
        return f"- **{'met' if met else 'missed'}** {label}: {mine:.2f} vs ≤ {limit:.2f}"

    def scaled(value, factor):
        return None if value is None else value * factor

    no_fail = me["par_fail"] == 0
    return [
        check(f"`run` median ≤ 0.8 × {TARGET_PEER}'s (ms)", me["run_median"],
              scaled(peer["run_median"], 0.8)),
        check(f"`create` ≤ {TARGET_PEER}'s (ms)", me["create"], peer["create"]),
        check(f"`start` ≤ {TARGET_PEER}'s (ms)", me["start"], peer["start"]),
        check(f"`delete` ≤ {TARGET_PEER}'s (ms)", me["delete"], peer["delete"]),
        check(f"CPU per run ≤ {TARGET_PEER}'s (ms)", me["cpu"], peer["cpu"]),
        check(f"peak RSS ≤ {TARGET_PEER}'s (MB)", me["rss_mb"], peer["rss_mb"]),
        check(f"{BATCH_SIZE} with {BATCH_PARALLEL} in parallel ≤ {TARGET_PEER}'s, "
              f"no failure ({me['par_fail']} failed) (s)", me["par_s"], peer["par_s"], no_fail),
    ]


def plot(bench: Bench, path: Path, title: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: python3-matplotlib is not installed"
    names = [r.name for r in bench.runtimes]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, measure, label in ((axes[0], "run", "default bundle"),
                               (axes[1], "run_userns", "with a user namespace")):
        data = [[ms(x.wall_ns) for x in bench.samples[n][measure]] or [float("nan")]
                for n in names]
        ax.boxplot(data, labels=names)
        ax.set_title(f"run /bin/true, {label}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("wall time, ms")
    axes[0].set_ylim(bottom=0)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


# ---------------------------------------------------------------- main


def drop_page_cache(path: str) -> None:
    """Start every runtime from the same page-cache state: a binary just
    written by a linker sits in the cache in large folios, which a fault
    maps whole, while one read back through exec faults is cached in
    readahead-sized pieces; peak RSS differs by up to 0.4 MB between the two."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--spawn", required=True, help="the spawn helper built from spawn.c")
    parser.add_argument("--husk", default="target/release/husk")
    parser.add_argument("--runtimes", default=env("BENCH_RUNTIMES") or "husk runc crun")
    parser.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS") or 100))
    parser.add_argument("--warmup", type=int, default=int(env("BENCH_WARMUP") or 5))
    parser.add_argument("--batch-repeats", type=int,
                        default=int(env("BENCH_BATCH_REPEATS") or 3))
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds after which a runtime command counts as hung")
    parser.add_argument("--subject", default=env("BENCH_SUBJECT") or "husk")
    parser.add_argument("--note", action="append", default=[],
                        help="a line to print under the table (e.g. how cgroups were set up)")
    parser.add_argument("--reproduce", default="make bench")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the runtimes create real containers)")

    # Orphaned container processes (after `create`) come to us to be reaped.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("bench: prctl(PR_SET_CHILD_SUBREAPER) failed")

    # Ctrl-C or a plain `kill`: finish the command under way, clean up, exit.
    signal.signal(signal.SIGINT, on_stop_signal)
    signal.signal(signal.SIGTERM, on_stop_signal)

    began = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="husk-bench-", dir="/run"))
    cleanup_notes: list[str] = []
    bench = None
    try:
        runtimes = parse_runtimes(args.runtimes, args.husk, state_dir)
        versions = {r.name: r.version() for r in runtimes}
        spawner = Spawner(os.path.realpath(args.spawn), args.timeout)
        prefix = f"bench{os.getpid()}"  # every container id starts with it
        bench = Bench(spawner, runtimes, args.bundles, state_dir, prefix)
        names = " ".join(r.name for r in runtimes)
        for r in runtimes:
            drop_page_cache(r.path)
        print(f"bench: {names}; {args.warmup} warm-up + {args.rounds} rounds, "
              f"then {args.batch_repeats}× {BATCH_SIZE} sequential and "
              f"{BATCH_SIZE} with {BATCH_PARALLEL} in parallel", file=sys.stderr)
        for i in range(args.warmup):
            bench.round(i, record=False)
        for i in range(args.rounds):
            bench.round(i, record=True)
            if (i + 1) % 20 == 0 or i + 1 == args.rounds:
                print(f"bench: round {i + 1}/{args.rounds}", file=sys.stderr)
        for i in range(args.batch_repeats):
            bench.batches_round(i)
            print(f"bench: batch {i + 1}/{args.batch_repeats}", file=sys.stderr)
    except Stop:
        pass
    finally:
        if bench:
            cleanup_notes = bench.cleanup()
        shutil.rmtree(state_dir, ignore_errors=True)
    if STOP_SIGNAL:
        for note in cleanup_notes:
            print(f"bench: {note}", file=sys.stderr)
        print("bench: stopped, cleaned up, no report written", file=sys.stderr)
        return 128 + STOP_SIGNAL[0]
    elapsed = time.monotonic() - began

    summaries = {r.name: summarise(bench, r) for r in bench.runtimes}
    now = datetime.datetime.now().astimezone()
    stamp = now.strftime("%Y-%m-%d %H:%M %Z")
    version_lines = [f"- {r.name}: `{versions[r.name]}` ({r.path})" for r in bench.runtimes]
    failure_lines = [f"- {r.name}: {f}" for r in bench.runtimes for f in r.failures[:5]]
    report = [
        f"# Runtime benchmark, {stamp}",
        "",
        f"Host: {os.uname().nodename}, Linux {os.uname().release}, "
        f"{os.cpu_count()} CPUs. {args.rounds} interleaved rounds after "
        f"{args.warmup} warm-up rounds; batches repeated {args.batch_repeats}×. "
        f"Took {elapsed:.0f} s.",
        "",
        "Versions:",
        *version_lines,
        "",
        *table(summaries),
        "",
        "Times are medians over the rounds unless marked min/max; `run userns` uses "
        "the bundle with a user namespace; batches are medians of wall time for the "
        "whole batch. CPU and peak RSS are from wait4 on the `run` command.",
        "",
        "## Ratios",
        "",
        *ratios(summaries, args.subject),
        "",
        f"## Targets ({args.subject} against {TARGET_PEER})",
        "",
        *targets(summaries, args.subject),
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in args.note],
        *([f"- {n}" for n in cleanup_notes] or ["- nothing was left behind to clean up"]),
        "",
        "Reproduce:",
        "",
        "```",
        args.reproduce,
        "```",
    ]
    if failure_lines:
        report += ["", "## First failures", "", *failure_lines]
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "results.md").write_text("\n".join(report) + "\n")
    (args.results / "samples.json").write_text(json.dumps({
        "date": now.isoformat(timespec="seconds"),
        "versions": versions,
        "summaries": summaries,
        "samples": {n: {m: [[x.wall_ns, x.cpu_ns, x.maxrss_kib] for x in v]
                        for m, v in d.items()} for n, d in bench.samples.items()},
        "batches": bench.batches,
    }) + "\n")
    plot_note = plot(bench, args.results / "run.png", f"{stamp}, {args.rounds} rounds")
    print("\n".join(report))
    print(f"\nbench: wrote {args.results}/results.md, samples.json"
          + ("" if plot_note else ", run.png") + (f" ({plot_note})" if plot_note else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
