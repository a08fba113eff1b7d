//! Helpers for integration tests: each test gets its own --root and bundle
//! (unique ids, so tests run in parallel), sharing one read-only busybox
//! rootfs; everything is removed on drop, also when the test fails.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const HUSK: &str = env!("CARGO_BIN_EXE_husk");

static N: AtomicUsize = AtomicUsize::new(0);

/// The shared rootfs, built once (under a file lock: test binaries run concurrently).
pub fn rootfs() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("target/test-rootfs");
    let lock = manifest.join("target/test-rootfs.lock");
    // (target/ of the checkout is not cargo's with CARGO_TARGET_DIR set)
    std::fs::create_dir_all(manifest.join("target")).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    // SAFETY: flock on an open fd.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    if !dir.join("bin/busybox").exists() {
        let st = Command::new(manifest.join("integration/mkrootfs.sh"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mkrootfs.sh failed");
    }
    dir
}

pub struct Env {
    pub root: PathBuf,
    pub base: PathBuf,
    pub name: String,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("{name}-{}-{n}", std::process::id());
        let base = std::env::temp_dir().join(format!("husk-test-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        Env {
            root: base.join("root"),
            base,
            name,
        }
    }

    /// A private, writable copy of the shared rootfs (for tests that change it).
    pub fn private_rootfs(&self) -> PathBuf {
        let dst = self.base.join("rootfs");
        let st = Command::new("cp").arg("-a").arg(rootfs()).arg(&dst).status().unwrap();
        assert!(st.success(), "copy the rootfs");
        dst
    }

    /// The rootfs for a container of another user (rootless): a copy under
    /// this test's directory in /tmp, made once. The shared rootfs lies in
    /// the checkout's target/, which another user may not reach (a clone
    /// under /root, mode 700).
    pub fn rootfs_for_any_user(&self) -> PathBuf {
        let dst = self.base.join("rootfs");
        if dst.exists() { dst } else { self.private_rootfs() }
    }

    /// The husk binary for another user to run: a copy under this test's
    /// directory in /tmp, made once (the built one lies in the checkout's
    /// target/, like the shared rootfs).
    pub fn husk_for_any_user(&self) -> PathBuf {
        let dst = self.base.join("husk");
        if !dst.exists() {
            std::fs::copy(HUSK, &dst).unwrap_or_else(|e| panic!("copy {HUSK} to {}: {e}", dst.display()));
        }
        dst
    }

    /// A unique container id for this test.
    pub fn id(&self, s: &str) -> String {
        format!("{}-{s}", self.name)
    }

    /// A bundle dir whose config is `husk spec`'s default, with the shared
    /// rootfs, no terminal, the given args, then `edit` applied.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dir = self.base.join(format!("bundle-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut v = husk::commands::spec::default_spec();
        v["root"]["path"] = json!(rootfs());
        v["process"]["terminal"] = json!(false);
        v["process"]["args"] = json!(args);
        edit(&mut v);
        std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&v).unwrap()).unwrap();
        dir
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(HUSK);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run husk with stdout and stderr in files, not pipes: a container
    /// started by `create`/`run -d` inherits them and would hold a pipe open.
    pub fn husk(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd(args), &self.base)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.husk(args);
        assert!(
            o.status.success(),
            "husk {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn err(&self, args: &[&str]) -> String {
        let o = self.husk(args);
        assert!(!o.status.success(), "husk {args:?} succeeded but should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Poll until the container reaches `want` (a condition, not a sleep).
    pub fn wait_status(&self, id: &str, want: &str) {
        wait_for(Duration::from_secs(10), || self.status(id) == want)
            .unwrap_or_else(|_| panic!("{id} never became {want} (is {})", self.status(id)));
    }

    /// The `cgroup` record of container `id`'s state.json.
    pub fn state_cgroup(&self, id: &str) -> Value {
        let st: Value =
            serde_json::from_str(&std::fs::read_to_string(self.root.join(id).join("state.json")).unwrap()).unwrap();
        st["cgroup"].clone()
    }

    /// `husk run` and its output, with the bundle as cwd.
    pub fn run(&self, bundle: &Path, id: &str) -> Output {
        self.husk(&["run", "-b", bundle.to_str().unwrap(), id])
    }
}

/// Run `args` (a program and its arguments) as uid and gid `uid` with no
/// supplementary groups and XDG_RUNTIME_DIR=`xdg`, stdin from /dev/null.
#[allow(dead_code)]
pub fn as_user(e: &Env, uid: u32, xdg: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        &uid.to_string(),
        "--regid",
        &uid.to_string(),
        "--clear-groups",
        "env",
    ])
    .arg(format!("XDG_RUNTIME_DIR={}", xdg.display()))
    .args(args)
    .stdin(Stdio::null());
    output_via_files(c, &e.base)
}

pub fn output_via_files(mut c: Command, dir: &Path) -> Output {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let out = dir.join(format!(".out-{n}"));
    let err = dir.join(format!(".err-{n}"));
    c.stdout(std::fs::File::create(&out).unwrap());
    c.stderr(std::fs::File::create(&err).unwrap());
    let status = c.status().unwrap();
    let o = Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_file(err);
    o
}

pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Result<(), ()> {
    let end = Instant::now() + timeout;
    let mut delay = Duration::from_millis(2);
    while Instant::now() < end {
        if f() {
            return Ok(());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    if f() { Ok(()) } else { Err(()) }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = Command::new(HUSK)
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "--force", &id])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Run a command with an extra inherited fd `fd` open on /dev/null (to
/// check that husk does not leak its caller's fds into the container).
pub fn with_leaked_fd(mut c: Command, fd: i32) -> Command {
    // SAFETY: pre_exec runs in the forked child; dup2 and open are async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if n >= 0 && n != fd {
                libc::dup2(n, fd);
                libc::close(n);
            }
            Ok(())
        });
    }
    c
}

/// The file "could not be checked on this host" lines go to:
/// $HUSK_NOT_CHECKED (`make test` sets it and prints the file at the end),
/// else target/not-checked.txt of this crate.
pub fn not_checked_file() -> PathBuf {
    std::env::var_os("HUSK_NOT_CHECKED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/not-checked.txt"))
}

/// Record that `what` could not be checked on this host, because `why`.
/// A test calls this where the host lacks a feature, after asserting what
/// husk does without it: nothing is skipped silently. One line "what
/// (why)", appended with O_APPEND in a single write, so that test
/// processes running in parallel do not mix their lines.
pub fn not_checked(what: &str, why: &str) {
    let flat = |s: &str| s.replace(['\n', '\r'], " ");
    let line = format!("{} ({})\n", flat(what), flat(why));
    eprintln!("not checked here: {}", line.trim_end());
    let path = not_checked_file();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let n = f
        .write(line.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    assert_eq!(n, line.len(), "short write to {}", path.display());
}

/// Is the v1 hierarchy of `controller` mounted (a v1 or hybrid host)?
pub fn v1_mounted(controller: &str) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines().any(|l| {
        l.split_once(" - ").is_some_and(|(_, fs)| {
            let f: Vec<&str> = fs.split(' ').collect();
            f.first() == Some(&"cgroup") && f.get(2).is_some_and(|o| o.split(',').any(|o| o == controller))
        })
    })
}

/// Tests that read v1 cgroup files (memory.limit_in_bytes, cpu.shares,
/// /sys/fs/cgroup/<controller>/...) need a v1 or hybrid host: false, and
/// recorded as not checked, on a pure cgroup v2 host (where `make
/// test-cgroupv2`'s scenarios check the v2 files instead).
pub fn v1_host(what: &str) -> bool {
    if ["memory", "cpu", "cpuset", "pids", "freezer", "devices"]
        .iter()
        .all(|c| v1_mounted(c))
    {
        return true;
    }
    not_checked(
        what,
        "it reads cgroup v1 files and this host has no v1 memory/cpu/cpuset/pids/freezer/devices hierarchies; make test-cgroupv2 checks cgroup v2",
    );
    false
}

/// Does the v1 memory hierarchy account swap (memory.memsw.* files)?
/// Off with the kernel's cgroup.memory=noswap (or swapaccount=0).
pub fn memsw_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

/// Does the host have a swap device? (Without one, a memory limit alone
/// brings the OOM killer; with one, only a memory+swap limit does.)
pub fn host_has_swap() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .skip(1)
        .any(|l| !l.trim().is_empty())
}

/// Can a user other than root make a user namespace on this host? Not
/// where user.max_user_namespaces is 0, Debian's
/// kernel.unprivileged_userns_clone is 0 or Ubuntu's
/// kernel.apparmor_restrict_unprivileged_userns is 1. Rootless tests check
/// there that husk fails, and record what they could not check.
pub fn unprivileged_userns() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    read("/proc/sys/user/max_user_namespaces").is_some_and(|v| v != "0")
        && read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v != "0")
        && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_none_or(|v| v != "1")
}

/// Where unprivileged user namespaces are off: `o` (a rootless husk run)
/// must have failed with an error; `what` is recorded as not checked.
/// Returns whether the test can go on (they are on).
pub fn rootless_possible(o: &Output, what: &str) -> bool {
    if unprivileged_userns() {
        return true;
    }
    assert!(
        !o.status.success() && !o.stderr.is_empty(),
        "a rootless container ran without unprivileged user namespaces: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    not_checked(
        what,
        "unprivileged user namespaces are off: user.max_user_namespaces, kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_userns",
    );
    false
}

/// Every directory of a stored cgroup record (v1 hierarchies, then cgroup2).
pub fn stored_cgroup_dirs(cg: &Value) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cg["v1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d["path"].as_str().unwrap()))
        .collect();
    if let Some(u) = cg["unified"].as_str() {
        v.push(PathBuf::from(u));
    }
    v
}

/// The directories of husk's default placement (runc's: `<id>` below the
/// caller's own cgroup, here the test's) in every hierarchy of this host
/// (existing or not).
pub fn default_cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let cg = husk::cgroups::Cgroup::new(None, id).unwrap();
    cg.v1.iter().map(|d| d.path.clone()).chain(cg.unified.clone()).collect()
}

/// Those of [`default_cgroup_dirs`] that exist now.
pub fn default_cgroup_dirs_left(id: &str) -> Vec<PathBuf> {
    default_cgroup_dirs(id).into_iter().filter(|d| d.exists()).collect()
}
