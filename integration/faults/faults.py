#!/usr/bin/env python3
"""make test-faults: every failure on husk's create path leaves nothing
behind and says what failed (issue 21). See README.md next to this file.

Classes (each prints one row of the final table):
  inject  every syscall `husk create` makes, failed one at a time with
          strace's fault injection (all of them; FAULTS_EVERY=k samples)
  kill    SIGKILL of create/start/exec/delete after a random delay
  disk    bad state on disk, --root full, a file, read-only
  race    50 parallel creates of one id; kill/delete/state/exec at once
  load    200 containers, 8 at a time

One case again, verbosely:  faults.py --case '<the repro string of a leak>'
Runs as root. Exit status 0 when every case was clean.
"""

import argparse
import errno as E
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUSK = os.environ.get("HUSK") or os.path.join(REPO, "target/x86_64-unknown-linux-gnu/release/husk")
FULL = os.environ.get("FAULTS_FULL") == "1"
# Which k-th cases a sample takes: fixed by default, so that a sample is
# the same on every run. FAULTS_SEED=random draws one anew.
_seed = os.environ.get("FAULTS_SEED", "1")
SEED = int(time.time()) if _seed == "random" else int(_seed)
# Seconds the sampled injection matrix may take (the whole suite: ~4 min).
INJECT_BUDGET = float(os.environ.get("FAULTS_INJECT_SECONDS", "110"))
# Every k-th case (the same cases on every machine with the same matrix);
# 1, the default: the whole injection matrix (~5 min on 2 CPUs), so CI
# neither misses a case nor turns red on one run and green on the next.
# FAULTS_EVERY=0 sizes k to fit FAULTS_INJECT_SECONDS instead.
EVERY = int(os.environ.get("FAULTS_EVERY", "1"))
WORKERS = int(os.environ.get("FAULTS_JOBS", "2"))
TOKEN = f"hf{os.getpid()}"
WORK = f"/tmp/husk-faults-{os.getpid()}"
ROOT = os.path.join(WORK, "root")
VERBOSE = False

# ---- helpers ----------------------------------------------------------------


def log(*a):
    print(*a, flush=True)


def vlog(*a):
    if VERBOSE:
        print(*a, flush=True)


def not_checked(what, why):
    subprocess.run([os.path.join(REPO, "integration/not-checked.sh"), "add", what, why], check=False)


class Res:
    def __init__(self, rc, out, err, timed_out=False):
        self.rc, self.out, self.err, self.timed_out = rc, out, err, timed_out

    def __repr__(self):
        return f"rc={self.rc} err={self.err.strip()!r}" + (" TIMEOUT" if self.timed_out else "")


_n = [0]
_nlock = threading.Lock()


def tmpname(stem):
    with _nlock:
        _n[0] += 1
        return os.path.join(WORK, "out", f"{stem}-{_n[0]}")


def run(args, timeout=20, root=ROOT, stdin=None):
    """husk args...; stdout and stderr through files (a container started by
    create inherits them and would hold a pipe open)."""
    o, e = tmpname("o"), tmpname("e")
    cmd = [HUSK, "--root", root] + args
    with open(o, "wb") as fo, open(e, "wb") as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
            to = False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
            to = True
    r = Res(rc, read(o), read(e), to)
    os.unlink(o)
    os.unlink(e)
    return r


def read(p):
    try:
        with open(p, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def q(cmd):
    return " ".join(a if re.fullmatch(r"[\w./=:,+-]+", a) else "'" + a.replace("'", "'\\''") + "'" for a in cmd)


BAD_WORDS = ("panicked", "RUST_BACKTRACE", "exited during setup without reporting", "fatal runtime error")


def bad_error(err, want_errno=None):
    """None when `err` is one clean line (naming `want_errno`'s text when
    given), else what is wrong with it."""
    lines = [l for l in err.splitlines() if l.strip()]
    if not lines:
        return "no error message"
    for w in BAD_WORDS:
        if w in err:
            return f"{w!r} in the message"
    if len(lines) > 1:
        # warnings before the error are fine; the error is the last line
        if not all(re.search(r"\bwarn", l, re.I) for l in lines[:-1]):
            return f"{len(lines)} lines"
    if want_errno is not None:
        text = os.strerror(want_errno)
        name = E.errorcode.get(want_errno, "")
        if text.lower() not in lines[-1].lower() and name not in lines[-1]:
            return f"does not name the failure ({name}: {text})"
    return None


# ---- leak detection ------------------------------------------------------------


def named(name, token):
    """A path component is container `token`'s (exactly), or any of this
    run's (the run token is a prefix)."""
    return name == token or (token == TOKEN and name.startswith(token))


def cgroup_dirs_with(token):
    hits = []
    for line in read("/proc/self/mountinfo").splitlines():
        pre, _, post = line.partition(" - ")
        fs = post.split(" ")[0] if post else ""
        if fs not in ("cgroup", "cgroup2"):
            continue
        mnt = pre.split(" ")[4].replace("\\040", " ")
        for d, subdirs, _ in os.walk(mnt):
            for s in list(subdirs):
                if named(s, token):
                    hits.append(os.path.join(d, s))
                    subdirs.remove(s)
    return hits


def procs_with(token):
    hits = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        cg = read(f"/proc/{p}/cgroup")
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            cmd = []
        in_cg = any(named(c, token) for l in cg.splitlines() for c in l.split(":", 2)[-1].split("/"))
        if in_cg or any(named(a.decode(errors="replace"), token) for a in cmd):
            if b"strace" in (cmd[0] if cmd else b""):
                continue
            # a zombie holds nothing; its parent (pid 1 or the caller's
            # subreaper, not husk) reaps it when it gets to it
            stat = read(f"/proc/{p}/stat")
            if stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] in ("Z", "X", ""):
                continue
            hits.append(p)
    return hits


def mounts_with(token, paths=()):
    out = []
    for line in read("/proc/self/mountinfo").splitlines():
        mp = line.split(" ")[4].replace("\\040", " ")
        if any(named(c, token) for c in mp.split("/")) or any(mp == x or mp.startswith(x + "/") for x in paths):
            out.append(mp)
    return out


def sockets_with(token):
    out = []
    for l in read("/proc/net/unix").splitlines()[1:]:
        f = l.split()
        if len(f) > 7 and any(named(c, token) for c in f[-1].split("/")):
            out.append(f[-1])
    return out


def leaks(cid, root=ROOT, paths=()):
    """What container `cid` left behind: state dir, processes, cgroups,
    mounts in this (the host's) mount namespace, sockets."""
    found = []
    if os.path.lexists(os.path.join(root, cid)):
        found.append(f"state dir {os.path.join(root, cid)}")
    ps = procs_with(cid)
    if ps:
        found.append("processes " + ",".join(ps))
    found += [f"cgroup {d}" for d in cgroup_dirs_with(cid)]
    found += [f"mount {m}" for m in mounts_with(cid, paths)]
    found += [f"socket {s}" for s in sockets_with(cid)]
    return found


def wait_gone(cid, timeout=5.0, root=ROOT, paths=()):
    """Leaks after giving dying processes `timeout` to finish exiting (the
    kernel's exit path of a SIGKILLed init takes milliseconds)."""
    end = time.time() + timeout
    delay = 0.005
    while True:
        lk = leaks(cid, root, paths)
        if not lk or time.time() > end:
            return lk
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def scrub(cid, root=ROOT, paths=()):
    """Remove whatever a failed case left (so that one leak does not spoil
    the next cases): delete --force, kill processes, rmdir cgroups, unmount."""
    run(["delete", "--force", cid], timeout=20, root=root)
    for p in procs_with(cid):
        try:
            os.kill(int(p), signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.05)
    for m in sorted(mounts_with(cid, paths), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL, check=False)
    for d in sorted(cgroup_dirs_with(cid), key=len, reverse=True):
        for sub, _, _ in sorted(os.walk(d), key=lambda t: len(t[0]), reverse=True):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    shutil.rmtree(os.path.join(root, cid), ignore_errors=True)


# ---- bundles -----------------------------------------------------------------


def rootfs():
    r = os.path.join(REPO, "target/test-rootfs")
    if not os.path.exists(os.path.join(r, "bin/busybox")):
        r = os.path.join(WORK, "rootfs")
        if not os.path.exists(os.path.join(r, "bin/busybox")):
            subprocess.run([os.path.join(REPO, "integration/mkrootfs.sh"), r], check=True)
    return r


class Env:
    netns_holder = None


def console_server(path, out):
    """A --console-socket at `path`: every pty received is drained into
    the file `out` (so a terminal container's output is checked as the
    others' stdout). Returns the listening socket (close it when done)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)

    def drain(fd):
        try:
            with open(out, "ab") as f:
                while True:
                    b = os.read(fd, 4096)
                    if not b:
                        break
                    f.write(b)
                    f.flush()
        except OSError:
            pass
        os.close(fd)

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                _, fds, _, _ = socket.recv_fds(c, 1024, 4)
                for fd in fds:
                    threading.Thread(target=drain, args=(fd,), daemon=True).start()
            except OSError:
                pass
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return s


class Console:
    """Per call: a fresh console socket for `extra` args that ask for one."""

    def __init__(self, extra, out):
        self.sock = None
        self.extra = list(extra)
        if "--console-socket" in extra:
            path = tmpname("console") + ".sock"
            self.sock = console_server(path, out)
            self.extra[self.extra.index("--console-socket") + 1] = path
            self.path = path

    def close(self):
        if self.sock:
            self.sock.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass


def make_bundle(name, args=("sh", "-c", "echo ok"), edit=None):
    d = os.path.join(WORK, "bundles", name)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "config.json")):
        os.unlink(os.path.join(d, "config.json"))
    subprocess.run([HUSK, "spec", "-b", d], check=True)
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    c["root"]["path"] = rootfs()
    c["process"]["terminal"] = False
    c["process"]["args"] = list(args)
    if edit:
        edit(c)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    return d


def quick_bundle():
    """The default config running `echo ok` (for "the id works again")."""
    d = os.path.join(WORK, "bundles", "default")
    return d if os.path.exists(os.path.join(d, "config.json")) else make_bundle("default")


def userns_ok():
    try:
        return int(read("/proc/sys/user/max_user_namespaces").strip() or "0") > 0
    except ValueError:
        return False


def bundles():
    """The representative bundles: name -> (dir, extra create args)."""
    b = {"default": (make_bundle("default"), [])}

    def userns(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        # (runc's default mounts a cgroup; in a user namespace it is read-only anyway)

    if userns_ok():
        b["userns"] = (make_bundle("userns", edit=userns), [])
    else:
        not_checked("faults: injected failures with a user namespace", "user namespaces are disabled here")

    def hooks(c):
        h = {"path": "/bin/sh", "args": ["sh", "-c", "true"]}
        c["hooks"] = {k: [h] for k in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")}

    b["hooks"] = (make_bundle("hooks", edit=hooks), [])

    def seccomp(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["kexec_load", "open_by_handle_at"], "action": "SCMP_ACT_ERRNO"}],
        }

    b["seccomp"] = (make_bundle("seccomp", edit=seccomp), [])

    if Env.netns_holder is not None:
        ns = f"/proc/{Env.netns_holder.pid}/ns/net"

        def join(c):
            for n in c["linux"]["namespaces"]:
                if n["type"] == "network":
                    n["path"] = ns

        b["joinns"] = (make_bundle("joinns", edit=join), [])

    def tty(c):
        c["process"]["terminal"] = True

    b["tty"] = (make_bundle("tty", edit=tty), ["--console-socket", "(per call)"])
    return b


# ---- class: injected syscall failures ------------------------------------------

# Syscalls left out of the matrix, and why (README.md says the same).
SKIP = {
    # cannot fail, or failing them is not a state the kernel produces
    "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "umask", "exit", "exit_group",
    "rt_sigreturn", "set_tid_address", "sched_yield", "uname",
    # memory: Rust's allocator aborts the process on ENOMEM (the kill class
    # covers a husk that dies at any point)
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise",
    # the static C library's start-up, before Rust's runtime and husk's main
    "arch_prctl", "set_robust_list", "rseq",
    # execve: the first one is strace starting husk itself; the init's
    # (at start, after which strace detaches) and hooks' are exec errors
    # covered by tests/lifecycle.rs and tests/hooks_tty.rs
    "execve",
}

# Single calls left out: the first rt_sigaction is Rust's runtime
# ignoring SIGPIPE before husk's main, which aborts when it fails (nothing
# exists yet; the init's own first rt_sigaction is at start, untraced).
SKIP_NTH = {("rt_sigaction", 1)}

# A plausible errno for each syscall (the failure the kernel gives there).
ERRNO = {
    "openat": E.EMFILE, "open": E.EMFILE, "openat2": E.EMFILE, "socket": E.EMFILE, "socketpair": E.EMFILE,
    "dup": E.EMFILE, "dup2": E.EMFILE, "dup3": E.EMFILE, "pidfd_open": E.EMFILE, "accept4": E.EMFILE,
    "accept": E.EMFILE, "pipe2": E.EMFILE, "memfd_create": E.EMFILE, "epoll_create1": E.EMFILE,
    "open_tree": E.EMFILE, "fsopen": E.EMFILE, "fsmount": E.EMFILE, "eventfd2": E.EMFILE,
    "mkdir": E.ENOSPC, "mkdirat": E.ENOSPC, "write": E.ENOSPC, "writev": E.ENOSPC, "pwrite64": E.ENOSPC,
    "rename": E.ENOSPC, "renameat": E.ENOSPC, "renameat2": E.ENOSPC, "mknodat": E.ENOSPC, "mknod": E.ENOSPC,
    "symlinkat": E.ENOSPC, "symlink": E.ENOSPC, "linkat": E.ENOSPC, "ftruncate": E.ENOSPC,
    "bind": E.EADDRINUSE, "listen": E.EADDRINUSE,
    "read": E.EIO, "pread64": E.EIO, "readv": E.EIO, "getdents64": E.EIO, "readlink": E.EIO, "readlinkat": E.EIO,
    "fsync": E.EIO, "fdatasync": E.EIO, "close": E.EIO,
    "statx": E.EACCES, "newfstatat": E.EACCES, "stat": E.EACCES, "lstat": E.EACCES, "fstat": E.EIO,
    "access": E.EACCES, "faccessat": E.EACCES, "faccessat2": E.EACCES, "statfs": E.EACCES, "fstatfs": E.EIO,
    "chdir": E.EACCES, "fchdir": E.EACCES, "getcwd": E.ENOENT, "unlink": E.EBUSY, "unlinkat": E.EBUSY, "rmdir": E.EBUSY,
    "clone": E.EAGAIN, "clone3": E.EAGAIN, "fork": E.EAGAIN, "vfork": E.EAGAIN,
    "mount": E.EPERM, "umount2": E.EBUSY, "pivot_root": E.EBUSY, "mount_setattr": E.EPERM, "move_mount": E.EPERM,
    "unshare": E.ENOSPC, "setns": E.EPERM, "sethostname": E.EPERM, "setdomainname": E.EPERM,
    "chroot": E.EPERM, "capset": E.EPERM, "capget": E.EPERM, "setresuid": E.EAGAIN, "setresgid": E.EPERM,
    "setgroups": E.EPERM, "setsid": E.EPERM, "prctl": E.EINVAL, "seccomp": E.EINVAL, "keyctl": E.EDQUOT,
    "fchownat": E.EPERM, "fchown": E.EPERM, "chown": E.EPERM, "lchown": E.EPERM, "fchmod": E.EPERM,
    "fchmodat": E.EPERM, "chmod": E.EPERM, "utimensat": E.EPERM,
    "sendto": E.ENOBUFS, "sendmsg": E.ENOBUFS, "recvfrom": E.ECONNRESET, "recvmsg": E.ECONNRESET,
    "connect": E.ECONNREFUSED, "setsockopt": E.ENOBUFS, "getsockopt": E.ENOBUFS,
    "flock": E.EINTR, "wait4": E.EINTR, "waitid": E.EINTR, "poll": E.EINTR, "ppoll": E.EINTR,
    "epoll_wait": E.EINTR, "nanosleep": E.EINTR, "clock_nanosleep": E.EINTR, "pselect6": E.EINTR,
    "kill": E.ESRCH, "tgkill": E.ESRCH, "pidfd_send_signal": E.ESRCH,
    "ioctl": E.ENOTTY, "fcntl": E.EMFILE, "lseek": E.EINVAL, "getrandom": E.EINTR,
    "sched_setaffinity": E.EINVAL, "sched_getaffinity": E.EINVAL, "prlimit64": E.EPERM, "setrlimit": E.EPERM,
    "rt_sigaction": E.EINVAL, "rt_sigprocmask": E.EINVAL, "sigaltstack": E.ENOMEM, "close_range": E.EINVAL,
    "bpf": E.EPERM, "personality": E.EINVAL, "setpriority": E.EACCES, "ioprio_set": E.EPERM,
}
# A second errno for the calls whose retry/EOF logic matters most.
EXTRA = {"flock": [E.ENOLCK], "recvfrom": [E.EINTR], "sendto": [E.EINTR], "accept4": [E.ECONNABORTED],
         "wait4": [E.ECHILD], "write": [E.EINTR]}

LINE = re.compile(r"^(\d+) +(?:<\.\.\. )?([a-z0-9_]+)(\(| resumed>)")


def record(bundle, extra):
    """The syscalls of one traced create + start: {pid: [name, ...]} with
    the create process first."""
    cid = f"{TOKEN}-rec-{os.path.basename(bundle)}"
    r = traced_create(bundle, extra, cid, None)
    calls, order = {}, []
    for line in read(r["log"]).splitlines():
        m = LINE.match(line)
        if not m or m.group(3) != "(":
            continue
        pid = m.group(1)
        if pid not in calls:
            calls[pid] = []
            order.append(pid)
        calls[pid].append(m.group(2))
    ok = r["rc"] == 0 and r["start"] is not None and r["start"].rc == 0 and r["ran"]
    scrub(cid)
    os.unlink(r["log"])
    if not ok:
        raise SystemExit(f"faults: the untraced-failure recording of {bundle} did not run: {r}")
    return [calls[p] for p in order]


def traced_create(bundle, extra, cid, inject, timeout=30):
    """create under strace (-f, detaching at execve: the container's own
    program is not traced), then start it when create succeeded. Returns
    create's rc/stderr, start's result, whether the container printed ok."""
    log_ = tmpname("strace")
    out, err = tmpname("out"), tmpname("err")
    cmd = ["strace", "-f", "-b", "execve", "-q", "-o", log_]
    if inject:
        cmd += ["-e", f"inject={inject}"]
    con = Console(extra, out)
    husk = [HUSK, "--root", ROOT, "create", "-b", bundle] + con.extra + [cid]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen(cmd + husk, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True)
    res = {"cmd": cmd + husk, "log": log_, "rc": None, "start": None, "ran": False, "hang": False}
    # husk create's own exit, in strace's log (its tracees may live on)
    end = time.time() + timeout
    main = None
    delay = 0.005
    while time.time() < end:
        txt = read(log_)
        if main is None and "\n" in txt:
            # (a complete first line: a partly written pid would never match)
            main = txt.split(" ", 1)[0]
        if main:
            m = re.search(rf"^{main} +\+\+\+ (exited with (\d+)|killed by (\w+))", txt, re.M)
            if m:
                res["rc"] = int(m.group(2)) if m.group(2) else m.group(3)
                break
        if p.poll() is not None and main is None:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    else:
        res["hang"] = True
    res["err"] = read(err)
    if res["rc"] == 0:
        res["start"] = run(["start", cid], timeout=15)
        if res["start"].rc == 0:
            t_end = time.time() + 10
            while time.time() < t_end and "ok" not in read(out):
                time.sleep(0.01)
    # strace ends once every tracee has exited or exec'd
    try:
        p.wait(timeout=10 if not res["hang"] else 0.1)
    except subprocess.TimeoutExpired:
        if not res["hang"]:
            res["strace_stuck"] = True
        for pid in procs_with(cid):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    if res["ran"] is False and res["start"] is not None and res["start"].rc == 0:
        t_end = time.time() + 2
        while time.time() < t_end and "ok" not in read(out):
            time.sleep(0.01)
    res["ran"] = "ok" in read(out)
    res["out"] = read(out)
    con.close()
    os.unlink(out)
    os.unlink(err)
    return res


def inject_case(name, bundle, extra, sc, n, eno, cid=None):
    """One injected failure. Returns None when clean, else what went wrong."""
    cid = cid or f"{TOKEN}-i-{name}-{sc}-{n}-{eno}"
    spec = f"{sc}:error={E.errorcode[eno]}:when={n}"
    r = traced_create(bundle, extra, cid, spec)
    vlog(f"  create rc={r['rc']} err={r['err'].strip()!r} start={r['start']} ran={r['ran']}")
    problems = []
    if r["hang"]:
        problems.append("create never exited")
    elif r["rc"] != 0:
        why = bad_error(r["err"], eno)
        if why:
            problems.append(f"create failed, message {why}: {r['err'].strip()!r}")
        lk = wait_gone(cid)
        if lk:
            problems.append("left after the failed create: " + "; ".join(lk))
    else:
        s = r["start"]
        if s.rc != 0:
            why = bad_error(s.err)
            if why or "has stopped" in s.err or "not running" in s.err:
                problems.append(f"create succeeded, start failed ({why or 'the init was dead'}): {s.err.strip()!r}")
        elif not r["ran"]:
            problems.append("create and start succeeded but the container printed nothing")
        d = run(["delete", "--force", cid], timeout=15)
        if d.rc != 0 or d.timed_out:
            problems.append(f"delete --force: {d}")
        lk = wait_gone(cid)
        if lk:
            problems.append("left after delete --force: " + "; ".join(lk))
    if r.get("strace_stuck"):
        problems.append("a traced process outlived create and start")
    os.unlink(r["log"]) if os.path.exists(r["log"]) else None
    if problems:
        scrub(cid)
    # the same id works right after
    cout = tmpname("cout")
    con = Console(extra, cout)
    again = run(["run", "-b", bundle] + con.extra + [cid], timeout=20)
    t_end = time.time() + 2
    while con.sock and again.rc == 0 and "ok" not in read(cout) and time.time() < t_end:
        time.sleep(0.01)
    con.close()
    if again.rc != 0 or "ok" not in again.out + read(cout):
        problems.append(f"the id does not work again: run {again} out={again.out.strip()!r}")
    lk = wait_gone(cid)
    if lk:
        problems.append("left after run: " + "; ".join(lk))
        scrub(cid)
    return "; ".join(problems) or None


def matrix(recorded):
    """(syscall, n) for every n up to the most calls of that syscall in
    one process of the recorded create."""
    most = {}
    for calls in recorded:
        cnt = {}
        for c in calls:
            cnt[c] = cnt.get(c, 0) + 1
        for c, k in cnt.items():
            most[c] = max(most.get(c, 0), k)
    cases = []
    for sc in sorted(most):
        if sc in SKIP:
            continue
        for eno in [ERRNO.get(sc, E.EIO)] + EXTRA.get(sc, []):
            for n in range(1, most[sc] + 1):
                if (sc, n) in SKIP_NTH:
                    continue
                cases.append((sc, n, eno))
    return cases


def sample(cases, want, rnd):
    """Every k-th case, from a random offset, but at least the first call
    of every syscall (and errno), k such that about `want` cases run."""
    if want >= len(cases):
        return list(cases), 1
    return sample_every(cases, max(1, -(-len(cases) // want)), rnd)


def sample_every(cases, k, rnd):
    """Every k-th case from an offset the seed picks, plus the first call
    of every syscall (and errno)."""
    off = rnd.randrange(k)
    picked = [c for i, c in enumerate(cases) if i % k == off or c[1] == 1]
    return picked, k


class Table:
    def __init__(self):
        self.rows = []
        self.leaks = []

    def add(self, cls, tried, clean, found):
        self.rows.append((cls, tried, clean, len(found)))
        self.leaks += [(cls, repro, what) for repro, what in found]

    def print(self):
        log("")
        log(f"{'fault class':<34} {'tried':>6} {'clean':>6} {'leaks/bad':>9}")
        for cls, t, c, l in self.rows:
            log(f"{cls:<34} {t:>6} {c:>6} {l:>9}")
        for cls, repro, what in self.leaks:
            log(f"\n[{cls}] {what}\n  reproduce: {repro}")


def par(items, fn, jobs=WORKERS):
    """fn(item) for each item on `jobs` threads; results in order."""
    res = [None] * len(items)
    it = iter(enumerate(items))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                try:
                    i, x = next(it)
                except StopIteration:
                    return
            res[i] = fn(x)

    ts = [threading.Thread(target=worker) for _ in range(jobs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def me(case):
    return f"{q([sys.executable, os.path.abspath(__file__)])} --case {q([case])}"


def class_inject(table, rnd, only=None):
    bs = bundles()
    all_cases = []
    for name, (b, extra) in bs.items():
        rec = record(b, extra)
        cs = matrix(rec)
        total = sum(len(c) for c in rec)
        log(f"inject: bundle {name}: {total} syscalls in {len(rec)} processes, {len(cs)} cases")
        all_cases += [(name, sc, n, eno) for sc, n, eno in cs]
    # time one case to size the sample
    t0 = time.time()
    inject_case("default", bs["default"][0], [], "getrandom", 99, E.EAGAIN)
    per = max(0.05, time.time() - t0)
    if FULL:
        picked, k = list(all_cases), 1
    elif EVERY:
        picked, k = sample_every(all_cases, EVERY, rnd)
    else:
        # (a failing case costs more than this clean one: a factor 1.2)
        picked, k = sample(all_cases, int(INJECT_BUDGET * WORKERS / (per * 1.2)), rnd)
    log(f"inject: {len(all_cases)} cases in the full matrix; running {len(picked)} "
        f"({'all' if k == 1 else f'every {k}-th from a random offset, plus the first call of each syscall'}; "
        f"{per:.2f}s a case, {WORKERS} at a time)")

    def one(c):
        name, sc, n, eno = c
        b, extra = bs[name]
        t = time.time()
        r = inject_case(name, b, extra, sc, n, eno)
        vlog(f"{name} {sc}#{n} {E.errorcode[eno]}: {r or 'clean'} ({time.time() - t:.2f}s)")
        return r

    results = par(picked, one)
    found = [(me(f"inject:{c[0]}:{c[1]}:{c[2]}:{E.errorcode[c[3]]}"), r) for c, r in zip(picked, results) if r]
    table.add(f"inject (sample 1/{k})" if k > 1 else "inject (all)", len(picked), len(picked) - len(found), found)
    Table.inject_counts = (len(picked), len(all_cases))


# ---- class: killed at any moment --------------------------------------------


def timed(args, timeout=20):
    t = time.time()
    r = run(args, timeout)
    return r, time.time() - t


def kill_after(args, delay):
    """Start husk args..., SIGKILL it after `delay` seconds (if still running)."""
    o, e = tmpname("o"), tmpname("e")
    with open(o, "wb") as fo, open(e, "wb") as fe:
        p = subprocess.Popen([HUSK, "--root", ROOT] + args, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    os.unlink(o)
    os.unlink(e)
    return p.returncode


def after_kill_checks(cid):
    problems = []
    for args in (["state", cid], ["list"]):
        r = run(args, timeout=10)
        if r.timed_out or r.rc < 0 or any(w in r.err for w in BAD_WORDS):
            problems.append(f"{args[0]} crashed or hung: {r}")
        elif args[0] == "state" and r.rc == 0:
            try:
                st = json.loads(r.out)
                if st.get("id") != cid:
                    problems.append(f"state names {st.get('id')!r}")
            except ValueError:
                problems.append(f"state printed no JSON: {r.out!r}")
        elif args[0] == "list" and r.rc != 0 and cid not in r.err:
            problems.append(f"list failed without naming {cid}: {r}")
    d = run(["delete", "--force", cid], timeout=20)
    if d.rc != 0 or d.timed_out:
        problems.append(f"delete --force: {d}")
    lk = wait_gone(cid)
    if lk:
        problems.append("left after delete --force: " + "; ".join(lk))
    return problems


def kill_case(what, delay, bundle, cid=None):
    cid = cid or f"{TOKEN}-k-{what}-{int(delay * 1e6)}"
    problems = []
    if what == "create":
        kill_after(["create", "-b", bundle, cid], delay)
    else:
        r = run(["create", "-b", bundle, cid])
        if r.rc != 0:
            return f"setup create failed: {r}"
        if what in ("exec", "delete"):
            s = run(["start", cid])
            if s.rc != 0:
                return f"setup start failed: {s}"
        if what == "start":
            kill_after(["start", cid], delay)
        elif what == "exec":
            kill_after(["exec", cid, "true"], delay)
        elif what == "delete":
            kill_after(["delete", "--force", cid], delay)
    problems += after_kill_checks(cid)
    if problems:
        scrub(cid)
    again = run(["run", "-b", quick_bundle(), cid], timeout=20)
    if again.rc != 0 or "ok" not in again.out:
        problems.append(f"the id does not work again: {again}")
        scrub(cid)
    return "; ".join(problems) or None


def class_kill(table, rnd, trials):
    b = make_bundle("sleeper", args=("sleep", "1000"))
    # how long each command takes (median of 3), to spread the delays over it
    cid = f"{TOKEN}-ktime"
    dur = {"create": [], "start": [], "exec": [], "delete": []}
    for _ in range(3):
        r, t = timed(["create", "-b", b, cid])
        dur["create"].append(t)
        r, t = timed(["start", cid])
        dur["start"].append(t)
        r, t = timed(["exec", cid, "true"])
        dur["exec"].append(t)
        r, t = timed(["delete", "--force", cid])
        dur["delete"].append(t)
    med = {k: sorted(v)[1] for k, v in dur.items()}
    log("kill: command durations (median of 3): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in med.items()))
    cases = []
    for what in ("create", "start", "exec", "delete"):
        for i in range(trials):
            # spread over [0, 1.2 x duration]: every moment, and a few after the end
            cases.append((what, round(med[what] * 1.2 * (i + rnd.random()) / trials, 6)))
    results = par(cases, lambda c: kill_case(c[0], c[1], b))
    found = [(me(f"kill:{c[0]}:{c[1]}"), r) for c, r in zip(cases, results) if r]
    table.add("kill -9 create/start/exec/delete", len(cases), len(cases) - len(found), found)
    Table.kill_count = len(cases)


# ---- class: bad state on disk ------------------------------------------------


def corrupt_case(kind, bundle, cid=None):
    cid = cid or f"{TOKEN}-d-{kind}"
    problems = []
    r = run(["create", "-b", bundle, cid])
    if r.rc != 0:
        return f"setup create failed: {r}"
    d = os.path.join(ROOT, cid)
    sj = os.path.join(d, "state.json")
    data = read(sj)
    if kind == "truncated":
        open(sj, "w").write(data[: len(data) // 2])
    elif kind == "empty":
        open(sj, "w").close()
    elif kind == "brace":
        open(sj, "w").write("{")
    elif kind == "not-json":
        open(sj, "w").write("this is not JSON\n")
    elif kind == "foreign-version":
        open(sj, "w").write(json.dumps({"version": 99, "container": {"id": cid, "pid": "1"}}))
    elif kind == "no-state-json":
        os.unlink(sj)
    elif kind == "no-exec-sock":
        os.unlink(os.path.join(d, "exec.sock"))
    st = run(["state", cid])
    if st.timed_out or st.rc < 0 or any(w in st.err for w in BAD_WORDS):
        problems.append(f"state crashed: {st}")
    elif st.rc != 0 and (bad_error(st.err) or (kind != "no-exec-sock" and "state.json" not in st.err)):
        problems.append(f"state: unclear error: {st}")
    elif st.rc == 0 and kind not in ("no-state-json", "no-exec-sock"):
        problems.append(f"state accepted a {kind} state.json: {st.out.strip()!r}")
    ls = run(["list"])
    if ls.timed_out or ls.rc < 0 or any(w in ls.err for w in BAD_WORDS):
        problems.append(f"list crashed: {ls}")
    elif kind not in ("no-exec-sock",) and cid not in ls.out + ls.err:
        problems.append(f"list does not name {cid}: {ls} {ls.out!r}")
    if kind == "no-exec-sock":
        s = run(["start", cid])
        if s.rc == 0 or bad_error(s.err):
            problems.append(f"start without exec.sock: {s}")
    dl = run(["delete", "--force", cid], timeout=20)
    if dl.rc != 0 or dl.timed_out:
        problems.append(f"delete --force: {dl}")
    lk = wait_gone(cid)
    if lk:
        problems.append("left after delete --force: " + "; ".join(lk))
        scrub(cid)
    return "; ".join(problems) or None


def root_case(kind, bundle):
    """--root on a full tmpfs, a file, or read-only: a clear error, nothing left."""
    cid = f"{TOKEN}-r-{kind}"
    base = os.path.join(WORK, f"root-{kind}")
    os.makedirs(base, exist_ok=True)
    mounted = False
    problems = []
    try:
        if kind == "file":
            root = os.path.join(base, "file")
            open(root, "w").write("x")
            want = None
        elif kind == "full":
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs", base]).returncode != 0:
                not_checked("faults: --root on a full tmpfs", "cannot mount a tmpfs here")
                return "skip"
            mounted = True
            # fill it: data blocks and inodes both
            with open(os.path.join(base, "fill"), "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            i = 0
            try:
                while True:
                    os.mkdir(os.path.join(base, f"d{i}"))
                    i += 1
            except OSError:
                pass
            root = os.path.join(base, "d0", "root")
            want = None
        elif kind == "read-only":
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", base]).returncode != 0:
                not_checked("faults: --root on a read-only tmpfs", "cannot mount a tmpfs here")
                return "skip"
            mounted = True
            root = os.path.join(base, "root")
            want = E.EROFS
        r = run(["create", "-b", bundle, cid], root=root)
        if r.rc == 0:
            problems.append(f"create succeeded with --root {kind}")
            run(["delete", "--force", cid], root=root)
        else:
            why = bad_error(r.err, want)
            if why or root not in r.err and os.path.dirname(root) not in r.err:
                problems.append(f"create: unclear error ({why or 'does not name the root'}): {r.err.strip()!r}")
        for args in (["list"], ["state", cid], ["delete", "--force", cid]):
            x = run(args, root=root)
            if x.timed_out or x.rc < 0 or any(w in x.err for w in BAD_WORDS):
                problems.append(f"{args[0]} crashed: {x}")
        lk = wait_gone(cid, root=root)
        if lk:
            problems.append("left: " + "; ".join(lk))
            scrub(cid, root=root)
    finally:
        if mounted:
            subprocess.run(["umount", base], check=False)
    return "; ".join(problems) or None


def class_disk(table):
    b = make_bundle("sleeper", args=("sleep", "1000"))
    kinds = ["truncated", "empty", "brace", "not-json", "foreign-version", "no-state-json", "no-exec-sock"]
    found = []
    tried = 0
    for k in kinds:
        tried += 1
        r = corrupt_case(k, b)
        if r:
            found.append((me(f"disk:{k}"), r))
    for k in ("full", "file", "read-only"):
        r = root_case(k, b)
        if r == "skip":
            continue
        tried += 1
        if r:
            found.append((me(f"root:{k}"), r))
    table.add("bad state on disk, bad --root", tried, tried - len(found), found)


# ---- class: races on one id --------------------------------------------------


def race_creates(bundle, n=50):
    cid = f"{TOKEN}-race"
    rs = par(list(range(n)), lambda _: run(["create", "-b", bundle, cid], timeout=30), jobs=n)
    problems = []
    wins = [r for r in rs if r.rc == 0]
    if len(wins) != 1:
        problems.append(f"{len(wins)} of {n} creates succeeded")
    for r in rs:
        if r.rc != 0 and (r.timed_out or bad_error(r.err)):
            problems.append(f"a losing create: {r}")
            break
    st = run(["state", cid])
    if st.rc != 0 or json.loads(st.out or "{}").get("status") != "created":
        problems.append(f"state after the race: {st} {st.out!r}")
    d = run(["delete", "--force", cid])
    if d.rc != 0:
        problems.append(f"delete --force: {d}")
    lk = wait_gone(cid)
    if lk:
        problems.append("left: " + "; ".join(lk))
        scrub(cid)
    return "; ".join(problems) or None


def race_ops(bundle, i, rnd):
    """One running container; state, exec, kill (SIGCONT) and one delete
    --force at once. Nothing may crash, every status is one a container
    can have, nothing is left."""
    cid = f"{TOKEN}-ops-{i}"
    r = run(["run", "-d", "-b", bundle, cid])
    if r.rc != 0:
        return f"setup run -d: {r}"
    ops = [["state", cid]] * 4 + [["exec", cid, "true"]] * 2 + [["kill", cid, "CONT"]] * 2 + [["list"]]
    ops.insert(rnd.randrange(len(ops) + 1), ["delete", "--force", cid])
    rs = par(ops, lambda a: (a, run(a, timeout=20)), jobs=len(ops))
    problems = []
    for a, x in rs:
        if x.timed_out or x.rc < 0 or any(w in x.err for w in BAD_WORDS):
            problems.append(f"{a[0]}: {x}")
        elif a[0] == "delete" and x.rc != 0:
            problems.append(f"delete --force: {x}")
        elif a[0] == "state" and x.rc == 0:
            s = json.loads(x.out).get("status")
            if s not in ("running", "stopped"):
                problems.append(f"state said {s!r} of a started container")
        elif a[0] == "exec" and x.rc >= 128 and not x.err.strip():
            pass  # the exec'd process was killed by the delete: exec exits 128+signal, as runc
        elif x.rc != 0 and a[0] != "list" and "does not exist" not in x.err and bad_error(x.err):
            problems.append(f"{a[0]}: {x}")
    st = run(["state", cid])
    if st.rc == 0 or "does not exist" not in st.err:
        problems.append(f"state after delete: {st}")
    lk = wait_gone(cid)
    if lk:
        problems.append("left: " + "; ".join(lk))
        scrub(cid)
    return "; ".join(problems) or None


def class_race(table, rnd, loops):
    b = make_bundle("default")
    s = make_bundle("sleeper", args=("sleep", "1000"))
    found = []
    r = race_creates(b)
    if r:
        found.append((me("race:create"), r))
    for i in range(loops):
        r = race_ops(s, i, rnd)
        if r:
            found.append((me(f"race:ops:{i}"), r))
    table.add("races on one id", 1 + loops, 1 + loops - len(found), found)


# ---- class: load ---------------------------------------------------------------


def class_load(table, n=200, jobs=8):
    b = make_bundle("load", args=("true",))

    def life(i):
        cid = f"{TOKEN}-load-{i}"
        t = time.time()
        for a in (["create", "-b", b, cid], ["start", cid]):
            r = run(a)
            if r.rc != 0:
                return (cid, f"{a[0]}: {r}", 0)
        return (cid, None, time.time() - t)

    def seq_time(k):
        t = time.time()
        for i in range(k):
            cid = f"{TOKEN}-seq-{i}"
            run(["create", "-b", b, cid])
            run(["start", cid])
            run(["delete", "--force", cid])
        return (time.time() - t) / k

    one = seq_time(10)
    t0 = time.time()
    rs = par(list(range(n)), life, jobs=jobs)
    wall = time.time() - t0
    found = []
    ok = 0
    for cid, err, _ in rs:
        d = run(["delete", "--force", cid], timeout=20)
        problem = err or (f"delete --force: {d}" if d.rc != 0 else None)
        lk = wait_gone(cid)
        if lk:
            problem = (problem + "; " if problem else "") + "left: " + "; ".join(lk)
            scrub(cid)
        if problem:
            found.append((me(f"load:{cid}"), problem))
        else:
            ok += 1
    log(f"load: {n} containers created and started, {jobs} at a time: {wall:.1f}s, "
        f"{wall / n * 1000:.1f} ms a container (wall); one at a time (create+start+delete): {one * 1000:.1f} ms")
    table.add(f"load ({n} containers, {jobs} at a time)", n, ok, found)


# ---- main ------------------------------------------------------------------------


def setup():
    os.makedirs(os.path.join(WORK, "out"), exist_ok=True)
    os.makedirs(ROOT, exist_ok=True)
    try:
        Env.netns_holder = subprocess.Popen(["unshare", "--net", "sleep", "100000"])
        for _ in range(100):
            if os.readlink(f"/proc/{Env.netns_holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.01)
    except OSError:
        Env.netns_holder = None
        not_checked("faults: a namespace joined by path", "unshare --net failed")


def teardown():
    for cid in os.listdir(ROOT) if os.path.isdir(ROOT) else []:
        run(["delete", "--force", cid], timeout=20)
    if Env.netns_holder:
        Env.netns_holder.kill()
        Env.netns_holder.wait()
    for p in procs_with(TOKEN):
        try:
            os.kill(int(p), signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
    for m in sorted(mounts_with(TOKEN, [WORK]), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    for d in sorted(cgroup_dirs_with(TOKEN), key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass
    shutil.rmtree(WORK, ignore_errors=True)


def host_ok():
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if not shutil.which("strace"):
        missing.append("strace")
    if not os.access(HUSK, os.X_OK):
        missing.append(f"husk at {HUSK} (make release)")
    if not cgroup_mounts():
        missing.append("a cgroup file system")
    # strace -e inject needs ptrace (a seccomp or YAMA policy may forbid it)
    r = subprocess.run(["strace", "-qq", "-o", "/proc/self/fd/1", "-e", "inject=getppid:error=EPERM", "true"],
                       capture_output=True)
    if r.returncode != 0:
        missing.append(f"strace fault injection (ptrace): {r.stderr.decode().strip()}")
    return missing


def cgroup_mounts():
    return [l for l in read("/proc/self/mountinfo").splitlines() if " - cgroup" in l]


def one_case(case):
    """Re-run one case (the repro string of a finding) and say what happened."""
    global VERBOSE
    VERBOSE = True
    parts = case.split(":")
    kind = parts[0]
    if kind == "inject":
        name, sc, n, en = parts[1], parts[2], int(parts[3]), getattr(E, parts[4])
        b, extra = bundles()[name]
        log(f"strace -f -b execve -e inject={sc}:error={parts[4]}:when={n} {q([HUSK, '--root', ROOT, 'create', '-b', b] + extra + ['ID'])}")
        return inject_case(name, b, extra, sc, n, en)
    if kind == "kill":
        return kill_case(parts[1], float(parts[2]), make_bundle("sleeper", args=("sleep", "1000")))
    if kind == "disk":
        return corrupt_case(parts[1], make_bundle("sleeper", args=("sleep", "1000")))
    if kind == "root":
        return root_case(parts[1], make_bundle("sleeper", args=("sleep", "1000")))
    if kind == "race":
        if parts[1] == "create":
            return race_creates(make_bundle("default"))
        return race_ops(make_bundle("sleeper", args=("sleep", "1000")), int(parts[2]), random.Random(SEED))
    if kind == "load":
        return "rerun the load class: faults.py --only load"
    raise SystemExit(f"unknown case {case!r}")


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", help="run one case (as printed after 'reproduce:')")
    ap.add_argument("--only", help="comma-separated classes: inject,kill,disk,race,load")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    VERBOSE = a.verbose
    missing = host_ok()
    if missing:
        for m in missing:
            not_checked("faults: the fault-injection suite", f"missing here: {m}")
        log("faults: cannot run here, missing: " + "; ".join(missing))
        return 0 if os.environ.get("FAULTS_REQUIRE") != "1" else 1
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        setup()
        if a.case:
            r = one_case(a.case)
            log(f"\n{a.case}: {r or 'clean'}")
            return 1 if r else 0
        classes = (a.only or "inject,kill,disk,race,load").split(",")
        rnd = random.Random(SEED)
        log(f"faults: husk {HUSK}, seed {SEED} (FAULTS_SEED), {'every injection case' if FULL or EVERY == 1 else 'sampled'} (FAULTS_EVERY=k: every k-th)")
        table = Table()
        t0 = time.time()
        steps = {
            "inject": lambda: class_inject(table, rnd),
            "kill": lambda: class_kill(table, rnd, 40 if FULL else 8),
            "disk": lambda: class_disk(table),
            "race": lambda: class_race(table, rnd, 20 if FULL else 5),
            "load": lambda: class_load(table),
        }
        for c in classes:
            t = time.time()
            steps[c]()
            log(f"{c}: {time.time() - t:.0f}s")
        table.print()
        inj = getattr(Table, "inject_counts", (0, 0))
        kills = getattr(Table, "kill_count", 0)
        bad = len(table.leaks)
        log(f"\nfaults: {inj[0]} injected syscall failures (of {inj[1]} in the full matrix), {kills} kill points, "
            f"{'all clean' if not bad else f'{bad} problems'}; {time.time() - t0:.0f}s")
        return 1 if bad else 0
    finally:
        teardown()


if __name__ == "__main__":
    sys.exit(main())
